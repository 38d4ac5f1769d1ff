//! `fakellm --port 0|N [--host 127.0.0.1] [--mode instant|echo] [--delay-ms N]`: serves the fake LLM and
//! prints `listening on http://ADDR` (OpenAI base URL: that plus `/v1`) as its first line.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use fakellm::{FakeLlm, Mode};

const USAGE: &str =
    "usage: fakellm [--port 0|N] [--host 127.0.0.1] [--mode instant|echo] [--delay-ms N]";

fn parse(args: &[String]) -> Result<(SocketAddr, Mode, Duration), String> {
    let mut port: u16 = 0;
    let mut host: IpAddr = [127, 0, 0, 1].into();
    let mut mode = Mode::Echo;
    let mut delay = Duration::ZERO;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--port" => port = value()?.parse().map_err(|_| format!("bad port\n{USAGE}"))?,
            "--host" => host = value()?.parse().map_err(|_| format!("bad host\n{USAGE}"))?,
            "--mode" => {
                mode = match value()?.as_str() {
                    "instant" => Mode::Instant,
                    "echo" => Mode::Echo,
                    other => return Err(format!("unknown mode {other}\n{USAGE}")),
                }
            }
            "--delay-ms" => {
                let ms: u64 = value()?.parse().map_err(|_| format!("bad delay\n{USAGE}"))?;
                delay = Duration::from_millis(ms);
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok((SocketAddr::new(host, port), mode, delay))
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (addr, mode, delay) = match parse(&args) {
        Ok(v) => v,
        Err(message) => {
            eprintln!("{message}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fakellm: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let fake = match FakeLlm::bind_with_delay(addr, mode, delay).await {
            Ok(f) => f,
            Err(e) => {
                eprintln!("fakellm: cannot bind {addr}: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        println!("listening on {}", fake.root_url);
        let _ = std::io::stdout().flush();
        fake.wait().await;
        std::process::ExitCode::SUCCESS
    })
}
