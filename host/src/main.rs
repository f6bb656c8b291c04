//! The `gateway-host` binary.

fn main() -> anyhow::Result<()> {
    Ok(())
}
