//! Behaviour of keys, did:key parsing and signature checks on both curves,
//! including the inputs that must be refused.

// Tests may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use atp_crypto::did_key;
use atp_crypto::{sha256, Algorithm, Error, PublicKey, SigningKey, VerifyMode};
use rand_core::{OsRng, RngCore};

const BOTH: [Algorithm; 2] = [Algorithm::P256, Algorithm::K256];

/// Curve orders from SEC 2 (secp256r1 and secp256k1), big-endian.
fn curve_order(alg: Algorithm) -> [u8; 32] {
    let hex_order = match alg {
        Algorithm::P256 => "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
        Algorithm::K256 => "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
    };
    hex::decode(hex_order).unwrap().try_into().unwrap()
}

/// `a - b` for 32-byte big-endian numbers with `a >= b`.
fn sub_be(a: &[u8; 32], b: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = 0;
        if d < 0 {
            d += 256;
            borrow = 1;
        }
        out[i] = d as u8;
    }
    assert_eq!(borrow, 0);
    out
}

/// `(r, n - s)`: the other valid signature for the same message and key.
fn flip_s(alg: Algorithm, sig: &[u8; 64]) -> [u8; 64] {
    let mut out = *sig;
    out[32..].copy_from_slice(&sub_be(&curve_order(alg), &sig[32..]));
    out
}

/// `s <= n / 2`, computed without the crate.
fn is_low_s(alg: Algorithm, sig: &[u8; 64]) -> bool {
    let n = curve_order(alg);
    // s <= n - s  <=>  2s <= n
    let other = sub_be(&n, &sig[32..]);
    sig[32..] <= other[..]
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

#[test]
fn sign_verify_round_trip_and_low_s() {
    for alg in BOTH {
        let mut saw_flip = 0;
        for i in 0..64 {
            let key = SigningKey::generate(alg);
            assert_eq!(key.algorithm(), alg);
            let msg = random_bytes(i * 3);
            let sig = key.sign(&msg);
            assert!(is_low_s(alg, &sig), "{alg:?} signature is high-S");
            let public = key.public_key();
            public.verify(&msg, &sig).unwrap();
            assert_eq!(sig, key.sign(&msg), "signing is deterministic");

            let high = flip_s(alg, &sig);
            assert!(!is_low_s(alg, &high));
            assert!(matches!(public.verify(&msg, &high), Err(Error::HighS)));
            public
                .verify_with(&msg, &high, VerifyMode::Lenient)
                .unwrap();
            saw_flip += 1;

            let mut other = msg.clone();
            other.push(1);
            assert!(matches!(
                public.verify(&other, &sig),
                Err(Error::BadSignature)
            ));
            let stranger = SigningKey::generate(alg).public_key();
            assert!(matches!(
                stranger.verify(&msg, &sig),
                Err(Error::BadSignature)
            ));
        }
        assert_eq!(saw_flip, 64);
    }
}

#[test]
fn verify_refuses_wrong_lengths_and_zero_scalars() {
    for alg in BOTH {
        let key = SigningKey::generate(alg);
        let public = key.public_key();
        let sig = key.sign(b"abc");
        for len in [0, 1, 63, 65, 70, 72] {
            let mut bad = sig.to_vec();
            bad.resize(len, 0);
            for mode in [VerifyMode::Strict, VerifyMode::Lenient] {
                assert!(
                    matches!(
                        public.verify_with(b"abc", &bad, mode),
                        Err(Error::MalformedSignature(_))
                    ),
                    "{alg:?} {len} bytes {mode:?}"
                );
            }
        }
        assert!(matches!(
            public.verify(b"abc", &[0u8; 64]),
            Err(Error::MalformedSignature(_))
        ));
        // s = n is out of range.
        let mut s_is_n = sig;
        s_is_n[32..].copy_from_slice(&curve_order(alg));
        assert!(matches!(
            public.verify(b"abc", &s_is_n),
            Err(Error::MalformedSignature(_))
        ));
    }
}

#[test]
fn private_key_import_export() {
    for alg in BOTH {
        let key = SigningKey::generate(alg);
        let bytes = key.to_bytes();
        assert_eq!(bytes.len(), 32);
        assert_eq!(key.to_hex(), hex::encode(&bytes));
        let again = SigningKey::from_bytes(alg, &bytes).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let upper = SigningKey::from_hex(alg, &key.to_hex().to_uppercase()).unwrap();
        assert_eq!(upper.to_bytes(), bytes);

        for len in [0, 31, 33, 64] {
            assert!(matches!(
                SigningKey::from_bytes(alg, &vec![1u8; len]),
                Err(Error::InvalidKey(_))
            ));
        }
        assert!(matches!(
            SigningKey::from_bytes(alg, &[0u8; 32]),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            SigningKey::from_bytes(alg, &curve_order(alg)),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            SigningKey::from_hex(alg, "zz"),
            Err(Error::InvalidKey(_))
        ));
        // The secret never shows in Debug output.
        let shown = format!("{key:?}");
        assert!(!shown.contains(&key.to_hex()));
        assert!(shown.contains(&key.did_key()));
    }
}

#[test]
fn public_key_encodings_round_trip() {
    for alg in BOTH {
        for _ in 0..32 {
            let public = SigningKey::generate(alg).public_key();
            let compressed = public.to_compressed_bytes();
            let uncompressed = public.to_uncompressed_bytes();
            assert_eq!(compressed.len(), 33);
            assert_eq!(uncompressed.len(), 65);
            assert_eq!(compressed[1..], uncompressed[1..33]);
            assert_eq!(
                PublicKey::from_sec1_bytes(alg, &compressed).unwrap(),
                public
            );
            assert_eq!(
                PublicKey::from_sec1_bytes(alg, &uncompressed).unwrap(),
                public
            );

            let did = public.to_did_key();
            assert_eq!(did, did_key::format(&public));
            assert_eq!(PublicKey::from_did_key(&did).unwrap(), public);
            assert_eq!(did_key::parse(&did).unwrap(), public);
            let multibase = public.to_multibase();
            assert_eq!(did, format!("did:key:{multibase}"));
            assert_eq!(PublicKey::from_multibase(&multibase).unwrap(), public);

            // Multicodec bytes behind the multibase.
            let raw = bs58::decode(&multibase[1..]).into_vec().unwrap();
            let prefix: &[u8] = match alg {
                Algorithm::P256 => &[0x80, 0x24],
                Algorithm::K256 => &[0xe7, 0x01],
            };
            assert_eq!(&raw[..2], prefix);
            assert_eq!(raw[2..], compressed[..]);
            let did_prefix = match alg {
                Algorithm::P256 => "did:key:zDn",
                Algorithm::K256 => "did:key:zQ3s",
            };
            assert!(did.starts_with(did_prefix));

            // Legacy DID document form: no multicodec, either point form.
            for point in [&compressed, &uncompressed] {
                let legacy = format!("z{}", bs58::encode(point).into_string());
                assert_eq!(
                    did_key::parse_legacy_multibase(alg, &legacy).unwrap(),
                    public
                );
            }
        }
    }
}

#[test]
fn same_point_on_other_curve_is_not_equal() {
    // A key is only equal to itself on the same curve.
    let p = SigningKey::from_bytes(Algorithm::P256, &[7u8; 32]).unwrap();
    let k = SigningKey::from_bytes(Algorithm::K256, &[7u8; 32]).unwrap();
    assert_ne!(p.public_key(), k.public_key());
    assert_ne!(p.did_key(), k.did_key());
}

#[test]
fn refuses_points_off_the_curve() {
    for alg in BOTH {
        let public = SigningKey::generate(alg).public_key();
        let mut off = public.to_uncompressed_bytes();
        off[64] ^= 1; // y + 1 or y - 1: no longer on the curve
        assert!(matches!(
            PublicKey::from_sec1_bytes(alg, &off),
            Err(Error::InvalidKey(_))
        ));
        // x = 2^256 - 1 is not a field element on either curve.
        let mut big_x = vec![0x02];
        big_x.extend_from_slice(&[0xff; 32]);
        assert!(matches!(
            PublicKey::from_sec1_bytes(alg, &big_x),
            Err(Error::InvalidKey(_))
        ));
        // Wrong tags and lengths.
        let mut bad_tag = public.to_compressed_bytes();
        bad_tag[0] = 0x04;
        assert!(PublicKey::from_sec1_bytes(alg, &bad_tag).is_err());
        let mut bad_tag = public.to_uncompressed_bytes();
        bad_tag[0] = 0x02;
        assert!(PublicKey::from_sec1_bytes(alg, &bad_tag).is_err());
        for len in [0, 1, 32, 34, 64, 66] {
            assert!(matches!(
                PublicKey::from_sec1_bytes(alg, &vec![2u8; len]),
                Err(Error::InvalidKey(_))
            ));
        }
        assert!(PublicKey::from_sec1_bytes(alg, &[0u8]).is_err());

        // The same off-curve point inside a did:key.
        let mut bytes = did_key::multicodec_prefix(alg).to_vec();
        bytes.extend_from_slice(&big_x);
        let did = format!("did:key:z{}", bs58::encode(bytes).into_string());
        assert!(matches!(
            PublicKey::from_did_key(&did),
            Err(Error::InvalidKey(_))
        ));
    }
}

fn did_of(prefix: &[u8], point: &[u8]) -> String {
    let mut bytes = prefix.to_vec();
    bytes.extend_from_slice(point);
    format!("did:key:z{}", bs58::encode(bytes).into_string())
}

#[test]
fn refuses_malformed_did_keys() {
    let public = SigningKey::generate(Algorithm::K256).public_key();
    let did = public.to_did_key();
    let compressed = public.to_compressed_bytes();

    // Prefix and multibase.
    for bad in [
        "",
        "did:key:",
        "did:key:z",
        "did:web:example.com",
        "DID:KEY:zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc",
        "zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc",
    ] {
        assert!(PublicKey::from_did_key(bad).is_err(), "{bad:?}");
    }
    assert!(matches!(
        PublicKey::from_did_key(&did.replacen("did:key:z", "did:key:f", 1)),
        Err(Error::InvalidMultibase(_))
    ));
    assert!(matches!(
        PublicKey::from_did_key(&format!("{did}0")), // '0' is not base58
        Err(Error::InvalidMultibase(_))
    ));
    assert!(matches!(
        PublicKey::from_did_key(&format!("{did} ")),
        Err(Error::InvalidMultibase(_))
    ));
    assert!(PublicKey::from_did_key(&did[..did.len() - 1]).is_err());
    assert!(matches!(
        PublicKey::from_did_key("did:example:zQ3s"),
        Err(Error::InvalidDidKey(_))
    ));

    // Multicodecs other than the two curves (ed25519-pub 0xed, x25519 0xec,
    // none at all).
    for prefix in [&[0xed, 0x01][..], &[0xec, 0x01], &[0x12, 0x00], &[]] {
        let bad = did_of(prefix, &compressed);
        assert!(
            matches!(
                PublicKey::from_did_key(&bad),
                Err(Error::UnsupportedKeyType(_))
            ),
            "{bad}"
        );
    }
    // A truncated varint.
    assert!(matches!(
        PublicKey::from_did_key(&did_of(&[0x80], &[])),
        Err(Error::UnsupportedKeyType(_))
    ));

    // Right multicodec, wrong point length (including the uncompressed form,
    // which the reference refuses in a did:key too).
    for alg in BOTH {
        let key = SigningKey::generate(alg).public_key();
        let prefix = did_key::multicodec_prefix(alg);
        for point in [
            key.to_uncompressed_bytes(),
            key.to_compressed_bytes()[..32].to_vec(),
            [key.to_compressed_bytes(), vec![0]].concat(),
            Vec::new(),
        ] {
            assert!(matches!(
                PublicKey::from_did_key(&did_of(&prefix, &point)),
                Err(Error::InvalidKey(_))
            ));
        }
        // A P-256 point announced as secp256k1 (or the reverse) may not even
        // be on that curve; if it is, it is a different key.
        let other = match alg {
            Algorithm::P256 => Algorithm::K256,
            Algorithm::K256 => Algorithm::P256,
        };
        let swapped = did_of(
            &did_key::multicodec_prefix(other),
            &key.to_compressed_bytes(),
        );
        if let Ok(parsed) = PublicKey::from_did_key(&swapped) {
            assert_eq!(parsed.algorithm(), other);
            assert_ne!(parsed, key);
        }
    }
}

#[test]
fn legacy_multibase_refuses_other_bases() {
    let public = SigningKey::generate(Algorithm::P256).public_key();
    let hex_form = format!("f{}", hex::encode(public.to_compressed_bytes()));
    assert!(matches!(
        did_key::parse_legacy_multibase(Algorithm::P256, &hex_form),
        Err(Error::InvalidMultibase(_))
    ));
    assert!(matches!(
        did_key::parse_legacy_multibase(Algorithm::P256, ""),
        Err(Error::InvalidMultibase(_))
    ));
}

#[test]
fn verify_signature_by_did_key() {
    for alg in BOTH {
        let key = SigningKey::generate(alg);
        let sig = key.sign(b"commit bytes");
        did_key::verify_signature(&key.did_key(), b"commit bytes", &sig).unwrap();
        assert!(matches!(
            did_key::verify_signature(&key.did_key(), b"other bytes", &sig),
            Err(Error::BadSignature)
        ));
        assert!(did_key::verify_signature("did:key:nope", b"commit bytes", &sig).is_err());
    }
}

#[test]
fn jwt_alg_names() {
    for alg in BOTH {
        assert_eq!(Algorithm::from_jwt_alg(alg.jwt_alg()).unwrap(), alg);
    }
    assert_eq!(Algorithm::P256.jwt_alg(), "ES256");
    assert_eq!(Algorithm::K256.jwt_alg(), "ES256K");
    assert!(matches!(
        Algorithm::from_jwt_alg("EdDSA"),
        Err(Error::UnsupportedKeyType(_))
    ));
}

#[test]
fn sha256_matches_nist_examples() {
    // FIPS 180-2 appendix B.1 ("abc") and the empty string.
    assert_eq!(
        hex::encode(sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        hex::encode(sha256(b"")),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}
