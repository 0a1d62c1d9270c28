//! Password hashes agree with Node's scrypt as the reference PDS uses it:
//! hashes it stores verify here, and ours verify there.

#![allow(clippy::unwrap_used)]

use atp_pds::password::PasswordHash;
use serde_json::json;

#[test]
fn password_hashes_match_the_reference_scrypt() {
    let passwords = [
        "hunter2",
        "correct horse battery staple",
        "pässwörd ✓",
        "xxxx-yyyy-zzzz-wwww",
    ];
    let ours: Vec<PasswordHash> = passwords
        .iter()
        .map(|p| PasswordHash::new(p).unwrap())
        .collect();
    let mut check = Vec::new();
    let mut expected = Vec::new();
    for (password, hash) in passwords.iter().zip(&ours) {
        check.push(json!({"stored": hash.as_stored(), "candidate": password}));
        expected.push(true);
        check.push(json!({"stored": hash.as_stored(), "candidate": format!("{password}!")}));
        expected.push(false);
    }
    let answer = atp_test_vectors::run_node(
        "pds-password.mjs",
        &json!({"make": passwords, "check": check}),
    );

    let checked: Vec<bool> = serde_json::from_value(answer["checked"].clone()).unwrap();
    assert_eq!(checked, expected, "Node's scrypt over our hashes");

    let made: Vec<String> = serde_json::from_value(answer["made"].clone()).unwrap();
    assert_eq!(made.len(), passwords.len());
    for (password, stored) in passwords.iter().zip(&made) {
        let hash = PasswordHash::from_stored(stored.as_str());
        assert!(
            hash.verify(password).unwrap(),
            "reference hash of {password:?}"
        );
        assert!(!hash.verify("something else").unwrap());
    }
    atp_test_vectors::report("pds-password.mjs (reference scrypt)", passwords.len() * 3);
}
