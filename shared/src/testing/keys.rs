//! Signing keys made for one test run by the `openssl` command ([`openssl_key`]): the
//! identity providers' keys that token issuers are tested with.

#[allow(unused_imports)]
use super::*;

/// A private key made by `openssl genpkey` with `options` (e.g. `["-algorithm",
/// "ED25519"]`) as `DIR/NAME.key`, and its public key as `DIR/NAME.pub`; the private
/// key's PEM.
pub async fn openssl_key(dir: &Path, name: &str, options: &[&str]) -> TestResult<Vec<u8>> {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let made = Command::new("openssl")
        .arg("genpkey")
        .args(options)
        .arg("-out")
        .arg(&private)
        .output();
    let made = within(WAIT, "openssl genpkey", made).await??;
    let exported = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .output();
    let exported = within(WAIT, "openssl pkey", exported).await??;
    if !made.status.success() || !exported.status.success() {
        let why = String::from_utf8_lossy(&made.stderr);
        return Err(format!("openssl (scripts/test installs it): {why}").into());
    }
    Ok(std::fs::read(private)?)
}
