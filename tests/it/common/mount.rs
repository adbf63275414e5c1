//! Small file systems for the full-disk tests: a tmpfs mounted for the test
//! and unmounted when dropped, and a way to fill it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs, unmounted on drop.
pub struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Mounts a tmpfs with `options` on `dir`; `None` (a recorded skip, see
/// [`super::skip`]) only when not root. As root a failing mount is a
/// failure, not a reason to pass.
pub fn tmpfs(test: &str, dir: &Path, options: &str) -> Option<Mount> {
    let uid = Command::new("id").arg("-u").output().unwrap().stdout;
    if String::from_utf8_lossy(&uid).trim() != "0" {
        super::skip(test, "mounting a tmpfs needs root");
        return None;
    }
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "tmpfs"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success(), "mount -t tmpfs as root: {status}");
    Some(Mount(dir.to_path_buf()))
}

/// Writes zeros to `path` until its file system is full.
pub fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 1024 * 1024];
    while file.write_all(&block).is_ok() {}
    let small = vec![0u8; 4096];
    while file.write_all(&small).is_ok() {}
}
