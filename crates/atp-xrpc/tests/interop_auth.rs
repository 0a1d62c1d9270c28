//! Cross-implementation checks with the reference (tests/interop/xrpc-auth.mjs):
//! service-auth JWTs made here verify with `verifyJwt` of
//! @atproto/xrpc-server and the reference's tokens verify here; tampered,
//! expired, wrong-audience, wrong-method and unsigned tokens are refused by
//! both. Record verdicts of the bundled lexicons match @atproto/api's
//! lexicon catalog on a set of generated records.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use atp_crypto::{Algorithm, PublicKey, SigningKey, VerifyMode};
use atp_xrpc::auth::{create_service_jwt, AuthError, ServiceJwtParams, ServiceJwtVerifier};
use atp_xrpc::lexicon::Lexicons;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::{json, Value};

const ISS: &str = "did:plc:7iza6de2dwap2sbkpav7c6c6";
const AUD: &str = "did:web:appview.example.com";
const LXM: &str = "app.bsky.feed.getTimeline";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn rust_verify(
    jwt: &str,
    did_key: &str,
    aud: &str,
    lxm: &str,
    mode: VerifyMode,
) -> Result<(), AuthError> {
    let key = PublicKey::from_did_key(did_key).unwrap();
    let resolver =
        move |_iss: String, _fresh: bool| std::future::ready(Ok::<_, AuthError>(key.clone()));
    let verifier = ServiceJwtVerifier::new(Some(aud), Some(lxm)).with_signature_mode(mode);
    block_on(verifier.verify(jwt, &resolver)).map(|_| ())
}

/// `n - s`: the high-S twin of a low-S signature.
fn high_s(alg: Algorithm, sig: &[u8]) -> Vec<u8> {
    let order = match alg {
        Algorithm::K256 => "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
        Algorithm::P256 => "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
    };
    let order: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&order[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let mut out = sig[..32].to_vec();
    let mut s = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = order[i] as i16 - sig[32 + i] as i16 - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        s[i] = d as u8;
    }
    out.extend_from_slice(&s);
    out
}

struct Case {
    name: String,
    jwt: String,
    did_key: String,
    aud: &'static str,
    lxm: &'static str,
    /// Whether both implementations must accept it.
    accept: bool,
}

#[test]
fn service_jwts_agree_with_the_reference() {
    let mut cases = Vec::new();
    let mut create = Vec::new();
    for alg in [Algorithm::K256, Algorithm::P256] {
        let key = SigningKey::generate(alg);
        let did_key = key.did_key();
        let other = SigningKey::generate(alg).did_key();
        let params = ServiceJwtParams::new(ISS, AUD, Some(LXM));
        let good = create_service_jwt(&key, &params).unwrap();
        let mut add = |name: &str, jwt: String, did_key: &str, aud, lxm, accept| {
            cases.push(Case {
                name: format!("{} {name}", alg.jwt_alg()),
                jwt,
                did_key: did_key.to_owned(),
                aud,
                lxm,
                accept,
            });
        };
        add("valid", good.clone(), &did_key, AUD, LXM, true);
        add(
            "wrong audience",
            good.clone(),
            &did_key,
            "did:web:other.example.com",
            LXM,
            false,
        );
        add(
            "wrong lxm",
            good.clone(),
            &did_key,
            AUD,
            "com.atproto.repo.createRecord",
            false,
        );
        add("other key", good.clone(), &other, AUD, LXM, false);
        let service_iss = ServiceJwtParams::new(format!("{ISS}#atproto_labeler"), AUD, Some(LXM));
        add(
            "did#service issuer",
            create_service_jwt(&key, &service_iss).unwrap(),
            &did_key,
            AUD,
            LXM,
            true,
        );
        let expired = ServiceJwtParams {
            iat: Some(now() - 120),
            exp: Some(now() - 60),
            ..params.clone()
        };
        add(
            "expired",
            create_service_jwt(&key, &expired).unwrap(),
            &did_key,
            AUD,
            LXM,
            false,
        );

        let parts: Vec<&str> = good.split('.').collect();
        let mut claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
        claims["exp"] = json!(now() + 3600);
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            B64.encode(serde_json::to_vec(&claims).unwrap()),
            parts[2]
        );
        add("tampered", tampered, &did_key, AUD, LXM, false);
        let none = format!(
            "{}.{}.",
            B64.encode(br#"{"typ":"JWT","alg":"none"}"#),
            parts[1]
        );
        add("alg none", none, &did_key, AUD, LXM, false);
        let sig = B64.decode(parts[2]).unwrap();
        let malleated = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            B64.encode(high_s(alg, &sig))
        );
        // The reference accepts malleable (high-S) signatures in service
        // tokens; our default verifier matches it.
        add("high-S signature", malleated, &did_key, AUD, LXM, true);

        let fresh = SigningKey::generate(alg);
        create.push(json!({"alg": alg.jwt_alg(), "privHex": fresh.to_hex(), "iss": ISS, "aud": AUD, "lxm": LXM}));
        create.push(json!({"alg": alg.jwt_alg(), "privHex": fresh.to_hex(), "iss": ISS, "aud": AUD, "lxm": LXM, "exp": now() - 10}));
    }

    let verify: Vec<Value> = cases
        .iter()
        .map(|c| json!({"jwt": c.jwt, "didKey": c.did_key, "aud": c.aud, "lxm": c.lxm}))
        .collect();
    let answer = atp_test_vectors::run_node(
        "xrpc-auth.mjs",
        &json!({"verify": verify, "create": create}),
    );

    for (case, reference) in cases.iter().zip(answer["verify"].as_array().unwrap()) {
        let ours = rust_verify(
            &case.jwt,
            &case.did_key,
            case.aud,
            case.lxm,
            VerifyMode::Lenient,
        );
        assert_eq!(
            reference["ok"].as_bool(),
            Some(case.accept),
            "reference on {}: {reference}",
            case.name
        );
        assert_eq!(ours.is_ok(), case.accept, "ours on {}: {ours:?}", case.name);
        if let Err(e) = &ours {
            assert_eq!(
                reference["error"].as_str(),
                Some(e.service_error_name()),
                "{}: {e:?} vs {reference}",
                case.name
            );
        }
        if case.name.ends_with("high-S signature") {
            assert!(rust_verify(
                &case.jwt,
                &case.did_key,
                case.aud,
                case.lxm,
                VerifyMode::Strict
            )
            .is_err());
        }
    }
    assert_eq!(answer["verify"].as_array().unwrap().len(), cases.len());

    // Tokens made by the reference.
    let made = answer["create"].as_array().unwrap();
    assert_eq!(made.len(), 4);
    for (i, token) in made.iter().enumerate() {
        let jwt = token["jwt"].as_str().unwrap();
        let did_key = token["didKey"].as_str().unwrap();
        let result = rust_verify(jwt, did_key, AUD, LXM, VerifyMode::Strict);
        if i % 2 == 0 {
            result.unwrap();
            assert_eq!(
                rust_verify(
                    jwt,
                    did_key,
                    "did:web:other.example.com",
                    LXM,
                    VerifyMode::Strict
                )
                .unwrap_err(),
                AuthError::BadAudience
            );
            assert!(matches!(
                rust_verify(
                    jwt,
                    did_key,
                    AUD,
                    "app.bsky.feed.getAuthorFeed",
                    VerifyMode::Strict
                ),
                Err(AuthError::BadLexiconMethod { .. })
            ));
            let other = SigningKey::generate(Algorithm::K256).did_key();
            assert!(rust_verify(jwt, &other, AUD, LXM, VerifyMode::Strict).is_err());
            let (input, _) = jwt.rsplit_once('.').unwrap();
            let tampered = format!("{input}.{}", B64.encode([7u8; 64]));
            assert_eq!(
                rust_verify(&tampered, did_key, AUD, LXM, VerifyMode::Lenient).unwrap_err(),
                AuthError::BadSignature
            );
        } else {
            assert_eq!(result.unwrap_err(), AuthError::Expired);
        }
    }
    println!(
        "service jwt interop: {} cases checked by the reference, {} reference tokens checked here",
        cases.len(),
        made.len()
    );
}

/// Records built to sit on both sides of the bundled schemas' constraints.
fn generated_records() -> Vec<(String, Value)> {
    let cid = "bafkreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq";
    let uri = "at://did:plc:7iza6de2dwap2sbkpav7c6c6/app.bsky.feed.post/3kznmn7xqxl22";
    let mut out: Vec<(String, Value)> = Vec::new();
    let texts = [
        "",
        "hello",
        &"a".repeat(300),
        &"a".repeat(301),
        &"🇩🇪".repeat(300),
        &"🇩🇪".repeat(301),
        &"👩‍👩‍👧‍👦".repeat(150),
        &"e\u{301}".repeat(300),
    ];
    let dates = [
        "2024-05-01T12:00:00.000Z",
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00+01:00",
        "2024-05-01",
        "yesterday",
        "2024-13-01T00:00:00Z",
        "2024-05-01T12:00:00",
        "2024-05-01T12:00:00.000+0100",
        "2024-05-01T12:00",
        "2024-05-01 12:00:00Z",
        "2024-05-01T12:00:00-00:00",
    ];
    // One constraint broken at a time, so that the first error (whose
    // property order may differ) is the only one.
    for text in texts {
        out.push((
            "app.bsky.feed.post".into(),
            json!({"$type": "app.bsky.feed.post", "text": text, "createdAt": dates[0]}),
        ));
    }
    for date in dates {
        out.push((
            "app.bsky.feed.post".into(),
            json!({"$type": "app.bsky.feed.post", "text": "x", "createdAt": date}),
        ));
    }
    let langs = [
        json!(["en"]),
        json!(["en", "pt-BR", "ja"]),
        json!(["en", "x"]),
        json!([1]),
        json!("en"),
        json!(["a", "b", "c", "d"]),
    ];
    for l in langs {
        out.push((
            "app.bsky.feed.post".into(),
            json!({"$type": "app.bsky.feed.post", "text": "x", "createdAt": dates[0], "langs": l}),
        ));
    }
    let embeds = [
        json!({"$type": "app.bsky.embed.images", "images": [{"alt": "", "image": {"$type": "blob", "ref": {"$link": cid}, "mimeType": "image/png", "size": 10}}]}),
        json!({"$type": "app.bsky.embed.images", "images": [{"alt": "", "image": {"$type": "blob", "ref": {"$link": cid}, "mimeType": "text/plain", "size": 10}}]}),
        json!({"$type": "app.bsky.embed.images", "images": [{"image": {"$type": "blob", "ref": {"$link": cid}, "mimeType": "image/png", "size": 10}}]}),
        json!({"$type": "app.bsky.embed.images", "images": []}),
        json!({"$type": "app.bsky.embed.record", "record": {"uri": uri, "cid": cid}}),
        json!({"$type": "app.bsky.embed.record", "record": {"uri": "https://example.com", "cid": cid}}),
        json!({"$type": "app.bsky.embed.external", "external": {"uri": "https://example.com", "title": "t", "description": "d"}}),
        json!({"$type": "com.example.custom.embed", "x": 1}),
        json!({"x": 1}),
    ];
    for e in embeds {
        out.push((
            "app.bsky.feed.post".into(),
            json!({"$type": "app.bsky.feed.post", "text": "x", "createdAt": dates[0], "embed": e}),
        ));
    }
    for subject in [
        json!({"uri": uri, "cid": cid}),
        json!({"uri": uri}),
        json!({"uri": uri, "cid": "nope"}),
        json!("x"),
    ] {
        out.push((
            "app.bsky.feed.like".into(),
            json!({"$type": "app.bsky.feed.like", "subject": subject, "createdAt": dates[0]}),
        ));
    }
    for subject in [
        "did:plc:7iza6de2dwap2sbkpav7c6c6",
        "did:web:example.com",
        "alice.example.com",
        "did:PLC:x",
    ] {
        out.push((
            "app.bsky.graph.follow".into(),
            json!({"$type": "app.bsky.graph.follow", "subject": subject, "createdAt": dates[0]}),
        ));
    }
    for name in [
        "",
        "Alice",
        &"n".repeat(64),
        &"n".repeat(65),
        &"😀".repeat(64),
        &"😀".repeat(65),
    ] {
        out.push((
            "app.bsky.actor.profile".into(),
            json!({"$type": "app.bsky.actor.profile", "displayName": name}),
        ));
    }
    out.push(("app.bsky.actor.profile".into(), json!({"$type": "app.bsky.actor.profile", "avatar": {"$type": "blob", "ref": {"$link": cid}, "mimeType": "image/jpeg", "size": 999}})));
    out.push(("app.bsky.actor.profile".into(), json!({"$type": "app.bsky.actor.profile", "avatar": {"$type": "blob", "ref": {"$link": cid}, "mimeType": "image/gif", "size": 999}})));
    out.push(("app.bsky.actor.profile".into(), json!({"$type": "app.bsky.actor.profile", "avatar": {"$type": "blob", "ref": {"$link": cid}, "mimeType": "image/jpeg", "size": 10_000_000}})));
    out
}

/// Records whose only fault is a blob of a refused type or size.
fn blob_constraint_broken(record: &Value) -> bool {
    let blob = record
        .pointer("/embed/images/0/image")
        .or_else(|| record.pointer("/avatar"));
    blob.is_some_and(|b| {
        b["mimeType"] == "text/plain"
            || b["mimeType"] == "image/gif"
            || b["size"].as_u64() > Some(1_000_000)
    })
}

#[test]
fn record_verdicts_agree_with_the_reference() {
    let lex = Lexicons::bundled();
    let records = generated_records();
    let input: Vec<Value> = records
        .iter()
        .map(|(c, r)| json!({"collection": c, "record": r}))
        .collect();
    let answer = atp_test_vectors::run_node("xrpc-auth.mjs", &json!({"records": input}));
    let verdicts = answer["records"].as_array().unwrap();
    assert_eq!(verdicts.len(), records.len());
    let (mut valid, mut invalid) = (0, 0);
    for ((collection, record), reference) in records.iter().zip(verdicts) {
        let ours = lex.validate_record(collection, record);
        let reference_ok = reference["ok"].as_bool().unwrap();
        if blob_constraint_broken(record) {
            // The reference record validator leaves blob `accept` and
            // `maxSize` to the blob store; the interop vectors (and we)
            // enforce them in validation.
            assert!(reference_ok, "{record}: {reference}");
            let message = ours.unwrap_err().to_string();
            assert!(
                message.contains("mimeType must be one of")
                    || message.contains("must not be larger than"),
                "{message}"
            );
            invalid += 1;
            continue;
        }
        assert_eq!(
            ours.is_ok(),
            reference_ok,
            "{record}: ours {ours:?}, reference {reference}"
        );
        if let Err(e) = ours {
            assert_eq!(
                Some(e.to_string().as_str()),
                reference["message"].as_str(),
                "{record}"
            );
            invalid += 1;
        } else {
            valid += 1;
        }
    }
    println!("lexicon interop: {} records ({valid} valid, {invalid} invalid) with the reference's verdicts", records.len());
}
