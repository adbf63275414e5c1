//! The `keystrate` binary: `serve` (the default) and the operator commands.

use clap::Parser;
use keystrate::config::{Cli, Command, Config};
use std::io::Read;
use std::process::ExitCode;
use tokio::signal::unix::{signal, Signal, SignalKind};

fn main() -> ExitCode {
    let cli = Cli::parse();
    keystrate::observe::init_logging(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            None => {
                serve(Config {
                    data: cli.data,
                    serve: cli.serve,
                })
                .await
            }
            Some(Command::Serve(args)) => {
                serve(Config {
                    data: cli.data,
                    serve: args,
                })
                .await
            }
            Some(Command::User(command)) => keystrate::cli::user(&cli.data, command, read_password)
                .await
                .map(|out| print!("{out}")),
            Some(Command::Keys(command)) => keystrate::cli::keys(&cli.data, command)
                .await
                .map(|out| print!("{out}")),
            Some(Command::Export { out }) => {
                keystrate::cli::export(&cli.data, out.as_deref()).await
            }
            Some(Command::Import { input }) => keystrate::cli::import(&cli.data, input.as_deref())
                .await
                .map(|out| print!("{out}")),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    // Installed before the server answers: a SIGTERM sent as soon as it
    // does (a script that saw /health answer) stops it gracefully instead
    // of killing it.
    let term = signal(SignalKind::terminate())
        .map_err(|e| format!("cannot install the SIGTERM handler: {e}"))?;
    let running = keystrate::start(config).await.map_err(|e| e.to_string())?;
    println!("keystrate listening on {}", running.public_url);
    if let Some(addr) = running.metrics_addr {
        println!("keystrate metrics on http://{addr}/metrics");
    }
    let stop = running.stop_signal();
    tokio::spawn(async move {
        wait_for_signal(term).await;
        let _ = stop.send(true);
    });
    running.wait().await;
    Ok(())
}

async fn wait_for_signal(mut term: Signal) {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("signal received");
}

/// The password on standard input, without its line ending.
fn read_password() -> Result<String, String> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    Ok(password.trim_end_matches(['\r', '\n']).to_string())
}
