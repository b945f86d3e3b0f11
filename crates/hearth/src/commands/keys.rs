//! `hearth hash-key`: the SHA-256 of an API key read from standard input, for a keys file that
//! holds no key in clear.

/// Reads one key from standard input and prints its digest.
///
/// # Errors
/// When standard input cannot be read.
pub fn hash_key() -> anyhow::Result<()> {
    let mut key = String::new();
    std::io::stdin().read_line(&mut key)?;
    println!("{}", crate::config::keys::hex_digest(key.trim_end_matches(['\r', '\n'])));
    Ok(())
}
