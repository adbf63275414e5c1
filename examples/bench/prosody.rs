//! The established peer for `/invites_api`: Prosody's `mod_invites_api`
//! (Debian packages `prosody`, `prosody-modules`), started on loopback
//! with a throwaway configuration and its default file storage. Optional:
//! without Prosody the row says why it was skipped.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MODULE: &str = "/usr/lib/prosody/modules/mod_invites_api/mod_invites_api.lua";

/// A running Prosody, stopped on drop.
pub struct Prosody {
    child: Child,
    _dir: tempfile::TempDir,
    /// `http://127.0.0.1:<port>/invites_api?key=<id>/<token>`
    pub url: String,
}

impl Drop for Prosody {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

fn config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
certificates = "{d}"
run_as_root = true
log = {{ error = "{d}/prosody.err" }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {} }}
s2s_ports = {{ {} }}
http_ports = {{ {} }}
http_interfaces = {{ "127.0.0.1" }}
https_ports = {{ }}
authentication = "internal_hashed"
modules_enabled = {{ "http" }}
VirtualHost "localhost"
  modules_enabled = {{ "invites", "invites_api" }}
"#,
        free_port(),
        free_port(),
        free_port()
    )
}

fn http_port(config: &str) -> &str {
    config
        .lines()
        .find_map(|l| l.strip_prefix("http_ports = { "))
        .and_then(|l| l.split_whitespace().next())
        .expect("http port")
}

/// Starts Prosody with an API key, or says why it cannot.
pub async fn start() -> Result<Prosody, String> {
    if !Path::new(MODULE).exists() {
        return Err("Prosody's mod_invites_api is not installed".into());
    }
    let dir = crate::procs::temp_dir("prosody");
    std::fs::create_dir_all(dir.path().join("data")).map_err(|e| e.to_string())?;
    let cfg_text = config(dir.path());
    let cfg = dir.path().join("prosody.cfg.lua");
    std::fs::write(&cfg, &cfg_text).map_err(|e| e.to_string())?;
    let out = Command::new("prosodyctl")
        .arg("--config")
        .arg(&cfg)
        .args(["mod_invites_api", "create", "localhost", "bench"])
        .output()
        .map_err(|e| format!("prosodyctl: {e}"))?;
    let key = String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find(|l| l.contains('/'))
        .map(str::trim)
        .map(str::to_string)
        .ok_or("prosodyctl printed no key")?;
    let child = Command::new("prosody")
        .arg("--config")
        .arg(&cfg)
        .arg("-F")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("prosody: {e}"))?;
    let port = http_port(&cfg_text).to_string();
    let prosody = Prosody {
        child,
        _dir: dir,
        url: format!("http://127.0.0.1:{port}/invites_api?key={key}"),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err() {
        if Instant::now() > deadline {
            return Err("Prosody did not start listening".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(prosody)
}
