//! Password scrambles. rwproxy checks a client's scramble itself (it never forwards it) and
//! computes fresh scrambles for each backend's own nonce.

use sha1::{Digest, Sha1};

pub const NATIVE_PASSWORD: &str = "mysql_native_password";
pub const CACHING_SHA2_PASSWORD: &str = "caching_sha2_password";
pub const CLEAR_PASSWORD: &str = "mysql_clear_password";

/// caching_sha2_password: "fast authentication succeeded" (after 0x01).
pub const SHA2_FAST_AUTH_OK: u8 = 0x03;
/// caching_sha2_password: "send the full password" (after 0x01).
pub const SHA2_PERFORM_FULL_AUTH: u8 = 0x04;
/// caching_sha2_password: the client asks for the server's RSA public key.
pub const SHA2_REQUEST_PUBLIC_KEY: u8 = 0x02;

/// The length of the nonce rwproxy sends.
pub const NONCE_LEN: usize = 20;

/// Turns 20 random bytes into a nonce of printable ASCII without `$` (as servers do, so that no
/// client mistakes a byte for a terminator).
pub fn nonce_from_random(random: [u8; NONCE_LEN]) -> [u8; NONCE_LEN] {
    let mut out = [0u8; NONCE_LEN];
    for (o, r) in out.iter_mut().zip(random) {
        let mut c = 0x21 + (r % 94); // '!'..='~'
        if c == b'$' {
            c = b'#';
        }
        *o = c;
    }
    out
}

fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

#[cfg(test)]
fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// `SHA1(password)`: what a `mysql_native_password` client proves it knows.
pub fn native_stage1(password: &[u8]) -> [u8; 20] {
    sha1(&[password])
}

/// `SHA1(SHA1(password))`: the stored form (`*HEX` in mysql.user).
pub fn native_stage2(password: &[u8]) -> [u8; 20] {
    sha1(&[&native_stage1(password)])
}

/// The `mysql_native_password` scramble for `nonce`, from `SHA1(password)`.
pub fn native_scramble_from_stage1(nonce: &[u8], stage1: &[u8; 20]) -> [u8; 20] {
    let stage2 = sha1(&[stage1]);
    let mask = sha1(&[nonce, &stage2]);
    let mut out = *stage1;
    for (o, m) in out.iter_mut().zip(mask) {
        *o ^= m;
    }
    out
}

/// The `mysql_native_password` scramble for `nonce` (computed by `mysql_common`). An empty
/// password sends an empty scramble.
pub fn native_scramble(nonce: &[u8], password: &[u8]) -> Vec<u8> {
    mysql_common::auth::plugins::mysql_native_password::scramble_native(nonce, password)
        .map(|s| s.to_vec())
        .unwrap_or_default()
}

/// Checks a client's `mysql_native_password` scramble against the stored `SHA1(SHA1(password))`.
/// On success returns `SHA1(password)`, which lets rwproxy authenticate to backends without ever
/// knowing the password itself.
pub fn native_verify(nonce: &[u8], token: &[u8], stage2: &[u8; 20]) -> Option<[u8; 20]> {
    if token.len() != 20 {
        return None;
    }
    let mask = sha1(&[nonce, stage2]);
    let mut stage1 = [0u8; 20];
    for i in 0..20 {
        stage1[i] = token[i] ^ mask[i];
    }
    if constant_time_eq(&sha1(&[&stage1]), stage2) {
        Some(stage1)
    } else {
        None
    }
}

/// The `caching_sha2_password` fast-path scramble (computed by `mysql_common`):
/// `SHA256(password) XOR SHA256(SHA256(SHA256(password)) || nonce)`. Nonces are 20 bytes; any
/// other length gives an empty scramble, which the peer rejects.
pub fn sha2_scramble(nonce: &[u8], password: &[u8]) -> Vec<u8> {
    let Ok(nonce) = <&[u8; 20]>::try_from(nonce) else {
        return Vec::new();
    };
    mysql_common::auth::plugins::caching_sha2_password::scramble_sha256(nonce, password)
        .map(|s| s.to_vec())
        .unwrap_or_default()
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parses the `*HEX` form of a `mysql_native_password` hash (41 characters).
pub fn parse_native_hash(s: &str) -> Option<[u8; 20]> {
    let hex = s.strip_prefix('*')?;
    if hex.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_scramble_agrees_with_stage1_path() {
        let nonce = b"01234567890123456789";
        let via_password = native_scramble(nonce, b"secret");
        let via_stage1 = native_scramble_from_stage1(nonce, &native_stage1(b"secret"));
        assert_eq!(via_password, via_stage1.to_vec());
        assert!(native_scramble(nonce, b"").is_empty());
    }

    #[test]
    fn sha2_scramble_unmasks_to_sha256_of_password() {
        let nonce = b"abcdefghijklmnopqrst";
        let token = sha2_scramble(nonce, b"secret");
        let p1 = sha256(&[b"secret"]);
        let mask = sha256(&[&sha256(&[&p1]), nonce]);
        let unmasked: Vec<u8> = token.iter().zip(mask).map(|(a, b)| a ^ b).collect();
        assert_eq!(unmasked, p1.to_vec());
        assert!(sha2_scramble(b"short", b"secret").is_empty());
    }

    #[test]
    fn verify_recovers_stage1() {
        let nonce = b"ABCDEFGHIJKLMNOPQRST";
        let token = native_scramble(nonce, b"pw");
        let stage2 = native_stage2(b"pw");
        assert_eq!(
            native_verify(nonce, &token, &stage2),
            Some(native_stage1(b"pw"))
        );
        let wrong = native_scramble(nonce, b"px");
        assert_eq!(native_verify(nonce, &wrong, &stage2), None);
        assert_eq!(native_verify(nonce, b"short", &stage2), None);
        // the recovered stage1 authenticates against another nonce
        let other = b"zyxwvutsrqponmlkjihg";
        let via_stage1 = native_scramble_from_stage1(other, &native_stage1(b"pw"));
        assert_eq!(via_stage1.to_vec(), native_scramble(other, b"pw"));
    }

    #[test]
    fn parses_mysql_user_hash() {
        // SELECT PASSWORD('app_pass') on MariaDB
        let h = native_stage2(b"app_pass");
        let hex: String = h.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(parse_native_hash(&format!("*{hex}")), Some(h));
        assert_eq!(parse_native_hash("*12"), None);
        assert_eq!(parse_native_hash("1234"), None);
        assert_eq!(parse_native_hash(&format!("*{}", "G".repeat(40))), None);
    }

    #[test]
    fn nonce_is_printable_without_dollar() {
        let n = nonce_from_random([b'$' - 0x21; 20]);
        assert!(n.iter().all(|c| (0x21..=0x7e).contains(c) && *c != b'$'));
    }
}
