//! The `keystrate` binary: `serve` (the default) and the operator commands.

use clap::Parser;
use keystrate::config::{Cli, Command, Config, UserCommand};
use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "keystrate=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
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
            Some(Command::User(UserCommand::Add { name })) => user_add(cli.data, &name).await,
            Some(Command::Keys(command)) => keystrate::cli::keys(&cli.data, command)
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
    let running = keystrate::start(config).await.map_err(|e| e.to_string())?;
    println!("keystrate listening on {}", running.public_url);
    let stop = running.stop_signal();
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop.send(true);
    });
    running.wait().await;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("signal received");
}

async fn user_add(data: std::path::PathBuf, name: &str) -> Result<(), String> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let password = password.trim_end_matches(['\r', '\n']);
    let store = keystrate::store::Store::open(&data).map_err(|e| {
        format!(
            "cannot open {} (is the server running?): {e}",
            data.display()
        )
    })?;
    let engine = keystrate::engine::Engine::new(store, Default::default());
    engine
        .create_user(name, password)
        .await
        .map_err(|e| e.to_string())?;
    println!("created user {name}");
    Ok(())
}
