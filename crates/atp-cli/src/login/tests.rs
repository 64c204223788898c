use super::*;

fn login_entry(access: &str) -> StoredLogin {
    StoredLogin {
        issuer: "https://idp.example.com".into(),
        client_id: "atp-cli".into(),
        audience: None,
        resource: Some("urn:atp:node".into()),
        scopes: vec!["openid".into()],
        token_endpoint: "https://idp.example.com/token".into(),
        revocation_endpoint: None,
        access_token: Secret::new(access.into()),
        refresh_token: Some(Secret::new("refresh-secret".into())),
        expires_at: Some(1),
    }
}

#[test]
fn secrets_are_redacted_in_debug_and_kept_in_json() {
    let entry = login_entry("access-secret");
    let debug = format!("{entry:?}");
    assert!(!debug.contains("access-secret") && !debug.contains("refresh-secret"), "{debug}");
    assert!(debug.contains("<redacted>"));
    let json = serde_json::to_string(&entry).unwrap();
    let back: StoredLogin = serde_json::from_str(&json).unwrap();
    assert_eq!(back.access_token.expose(), "access-secret");
    assert_eq!(back.refresh_token.unwrap().expose(), "refresh-secret");
}

#[cfg(unix)]
#[test]
fn the_file_is_written_0600_atomically_and_refused_when_others_may_read_it() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    assert!(read_credentials(&home).unwrap().is_none(), "no file: no login");
    let mut file = CredentialsFile { version: CREDENTIALS_VERSION, ..Default::default() };
    file.profiles.insert("default".into(), login_entry("one"));
    write_credentials(&home, &file).unwrap();
    let path = credentials_path(&home);
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&home).unwrap().permissions().mode() & 0o777, 0o700);
    // Replaced whole: no temporary file is left behind.
    file.profiles.insert("default".into(), login_entry("two"));
    write_credentials(&home, &file).unwrap();
    let names: Vec<_> = std::fs::read_dir(&home).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from(CREDENTIALS_FILE)]);
    let read = read_credentials(&home).unwrap().unwrap();
    assert_eq!(read.profiles["default"].access_token.expose(), "two");

    for mode in [0o640, 0o604, 0o660] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let e = read_credentials(&home).unwrap_err();
        assert_eq!(e.code(), "CREDENTIALS_INSECURE", "mode {mode:o}");
        assert_eq!(e.exit_code(), crate::EXIT_LOCAL);
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

    // A damaged file: the position, never the content.
    std::fs::write(&path, br#"{"version": 1, "profiles": {"default": {"accessToken": 42"#).unwrap();
    let e = read_credentials(&home).unwrap_err();
    assert_eq!(e.code(), "CREDENTIALS_MALFORMED");
    assert!(!e.to_string().contains("42"), "{e}");
    std::fs::write(&path, br#"{"version": 2, "profiles": {}}"#).unwrap();
    assert_eq!(read_credentials(&home).unwrap_err().code(), "CREDENTIALS_MALFORMED");

    // The last login removed: the file goes.
    write_credentials(&home, &CredentialsFile::default()).unwrap();
    assert!(!path.exists());
}

#[test]
fn endpoints_need_https_except_on_loopback() {
    for ok in [
        "https://idp.example.com/realms/atp",
        "http://127.0.0.1:8080",
        "http://[::1]:9000/x",
        "http://localhost:3000",
    ] {
        assert!(check_endpoint(ok, "the issuer").is_ok(), "{ok}");
    }
    for bad in ["http://idp.example.com", "http://127.0.0.2.example.com", "ftp://127.0.0.1", "idp"]
    {
        assert!(check_endpoint(bad, "the issuer").is_err(), "{bad}");
    }
}

#[test]
fn profile_names_and_provider_text_are_bounded() {
    for ok in ["default", "prod-eu", "a.b_c"] {
        assert!(check_profile_name(ok).is_ok(), "{ok}");
    }
    for bad in ["", ".hidden", "a/b", "x y", &"p".repeat(65)] {
        assert!(check_profile_name(bad).is_err(), "{bad}");
    }
    let shown = provider_text(&format!("line\nbreak{}", "x".repeat(500)));
    assert!(!shown.contains('\n'));
    assert_eq!(shown.chars().count(), MAX_PROVIDER_TEXT + 1);
}
