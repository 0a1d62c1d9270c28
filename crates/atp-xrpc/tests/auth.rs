//! Session tokens and service tokens: creation, verification and every
//! rejection case (alg none, algorithm confusion, bad signature, expiry,
//! audience, type and scope mix-ups, lxm, issuer, key rotation).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use atp_crypto::{Algorithm, PublicKey, SigningKey, VerifyMode};
use atp_syntax::Did;
use atp_xrpc::auth::{
    create_service_jwt, AuthError, AuthScope, RefreshTokenId, ServiceJwtParams, ServiceJwtVerifier,
    SessionTokenAuthority, StoredRefreshToken, REFRESH_GRACE_PERIOD,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

const SERVICE_DID: &str = "did:web:pds.example.com";
const SECRET: &str = "a-jwt-secret";
const NOW: i64 = 1_700_000_000;

fn did() -> Did {
    "did:plc:7iza6de2dwap2sbkpav7c6c6".parse().unwrap()
}

fn authority() -> SessionTokenAuthority {
    SessionTokenAuthority::new(SECRET, SERVICE_DID).unwrap()
}

fn decode_segment(token: &str, index: usize) -> Value {
    serde_json::from_slice(&B64.decode(token.split('.').nth(index).unwrap()).unwrap()).unwrap()
}

/// `token` with its claims replaced by `claims` (header and signature kept).
fn with_claims(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let claims = B64.encode(serde_json::to_vec(claims).unwrap());
    format!("{}.{claims}.{}", parts[0], parts[2])
}

/// A token with arbitrary header and claims, HMAC-signed with `secret`.
fn hs256_token(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        B64.encode(serde_json::to_vec(header).unwrap()),
        B64.encode(serde_json::to_vec(claims).unwrap())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", B64.encode(mac.finalize().into_bytes()))
}

fn access_claims() -> Value {
    json!({"scope": "com.atproto.access", "aud": SERVICE_DID, "sub": did().as_str(), "iat": NOW, "exp": NOW + 7200})
}

#[test]
fn session_tokens_have_the_reference_shape() {
    let session = authority()
        .create_session_at(&did(), AuthScope::Access, None, NOW)
        .unwrap();
    assert_eq!(
        decode_segment(&session.access_jwt, 0),
        json!({"typ": "at+jwt", "alg": "HS256"})
    );
    assert_eq!(
        decode_segment(&session.refresh_jwt, 0),
        json!({"typ": "refresh+jwt", "alg": "HS256"})
    );
    let access = decode_segment(&session.access_jwt, 1);
    assert_eq!(access, access_claims());
    let refresh = decode_segment(&session.refresh_jwt, 1);
    assert_eq!(refresh["scope"], "com.atproto.refresh");
    assert_eq!(refresh["aud"], SERVICE_DID);
    assert_eq!(refresh["sub"], did().as_str());
    assert_eq!(refresh["exp"], NOW + 90 * 24 * 3600);
    // jti: 32 random bytes, padded base64.
    let jti = refresh["jti"].as_str().unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(jti)
            .unwrap()
            .len(),
        32
    );
    assert_eq!(session.refresh.jti.as_str(), jti);

    // The MAC is HMAC-SHA256 under the secret's bytes, over `header.claims`.
    for token in [&session.access_jwt, &session.refresh_jwt] {
        let (input, tag) = token.rsplit_once('.').unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        assert_eq!(
            B64.decode(tag).unwrap(),
            mac.finalize().into_bytes().to_vec()
        );
    }
}

#[test]
fn session_tokens_verify() {
    let auth = authority();
    for scope in AuthScope::ACCESS_SCOPES {
        let (jwt, claims) = auth.create_access_token_at(&did(), scope, NOW).unwrap();
        let verified = auth
            .verify_access_at(&jwt, &AuthScope::ACCESS_SCOPES, NOW + 10)
            .unwrap();
        assert_eq!(verified, claims);
        assert_eq!(verified.scope, scope);
    }
    let (jwt, claims) = auth
        .create_refresh_token_at(&did(), Some(RefreshTokenId::new("fixed-id")), NOW)
        .unwrap();
    assert_eq!(auth.verify_refresh_at(&jwt, NOW + 10).unwrap(), claims);
    assert_eq!(claims.jti.as_str(), "fixed-id");
    // Verification at the real current time, too.
    let session = auth.create_session(&did(), AuthScope::AppPass).unwrap();
    assert_eq!(
        auth.verify_access(&session.access_jwt, &[AuthScope::AppPass])
            .unwrap()
            .scope,
        AuthScope::AppPass
    );
    assert_eq!(
        auth.verify_refresh(&session.refresh_jwt).unwrap().sub,
        did()
    );
}

#[test]
fn access_and_refresh_tokens_are_not_interchangeable() {
    let auth = authority();
    let session = auth
        .create_session_at(&did(), AuthScope::Access, None, NOW)
        .unwrap();
    let all = AuthScope::ALL;
    assert!(matches!(
        auth.verify_access_at(&session.refresh_jwt, &all, NOW),
        Err(AuthError::BadType(_))
    ));
    assert!(matches!(
        auth.verify_refresh_at(&session.access_jwt, NOW),
        Err(AuthError::BadType(_))
    ));
    // Right typ, wrong scope: still refused.
    let mut claims = access_claims();
    claims["scope"] = json!("com.atproto.refresh");
    claims["jti"] = json!("x");
    let token = hs256_token(
        &json!({"typ": "at+jwt", "alg": "HS256"}),
        &claims,
        SECRET.as_bytes(),
    );
    assert!(matches!(
        auth.verify_access_at(&token, &all, NOW),
        Err(AuthError::BadScope(_))
    ));
    let token = hs256_token(
        &json!({"typ": "refresh+jwt", "alg": "HS256"}),
        &access_claims(),
        SECRET.as_bytes(),
    );
    assert!(matches!(
        auth.verify_refresh_at(&token, NOW),
        Err(AuthError::BadScope(_))
    ));
    // A refresh token needs its jti.
    let mut claims = access_claims();
    claims["scope"] = json!("com.atproto.refresh");
    let token = hs256_token(
        &json!({"typ": "refresh+jwt", "alg": "HS256"}),
        &claims,
        SECRET.as_bytes(),
    );
    assert_eq!(
        auth.verify_refresh_at(&token, NOW).unwrap_err(),
        AuthError::MissingTokenId
    );
    // A scope outside the allowed list.
    let (jwt, _) = auth
        .create_access_token_at(&did(), AuthScope::AppPass, NOW)
        .unwrap();
    assert!(matches!(
        auth.verify_access_at(&jwt, &[AuthScope::Access], NOW),
        Err(AuthError::BadScope(_))
    ));
    // Access tokens cannot be minted with the refresh scope.
    assert!(auth
        .create_access_token_at(&did(), AuthScope::Refresh, NOW)
        .is_err());
}

#[test]
fn expired_session_tokens_are_refused() {
    let auth = authority();
    let session = auth
        .create_session_at(&did(), AuthScope::Access, None, NOW)
        .unwrap();
    let err = auth
        .verify_access_at(&session.access_jwt, &AuthScope::ACCESS_SCOPES, NOW + 7200)
        .unwrap_err();
    assert_eq!(err, AuthError::Expired);
    assert_eq!(err.session_error_name(), "ExpiredToken");
    assert!(auth
        .verify_access_at(&session.access_jwt, &AuthScope::ACCESS_SCOPES, NOW + 7199)
        .is_ok());
    assert_eq!(
        auth.verify_refresh_at(&session.refresh_jwt, NOW + 90 * 24 * 3600)
            .unwrap_err(),
        AuthError::Expired
    );
}

#[test]
fn forged_and_confused_session_tokens_are_refused() {
    let auth = authority();
    let all = AuthScope::ACCESS_SCOPES;
    let at = json!({"typ": "at+jwt", "alg": "HS256"});

    // Another secret.
    let token = hs256_token(&at, &access_claims(), b"another secret");
    assert_eq!(
        auth.verify_access_at(&token, &all, NOW).unwrap_err(),
        AuthError::BadSignature
    );

    // alg none, with or without a signature.
    let none = json!({"typ": "at+jwt", "alg": "none"});
    let unsigned = format!(
        "{}.{}.",
        B64.encode(serde_json::to_vec(&none).unwrap()),
        B64.encode(serde_json::to_vec(&access_claims()).unwrap())
    );
    assert_eq!(
        auth.verify_access_at(&unsigned, &all, NOW).unwrap_err(),
        AuthError::UnsupportedAlgorithm("none".into())
    );
    let signed_none = hs256_token(&none, &access_claims(), SECRET.as_bytes());
    assert!(matches!(
        auth.verify_access_at(&signed_none, &all, NOW),
        Err(AuthError::UnsupportedAlgorithm(_))
    ));

    // Other HMAC variants and asymmetric algorithms.
    for alg in ["HS384", "HS512", "RS256", "HS256 ", "hs256"] {
        let token = hs256_token(
            &json!({"typ": "at+jwt", "alg": alg}),
            &access_claims(),
            SECRET.as_bytes(),
        );
        assert!(
            matches!(
                auth.verify_access_at(&token, &all, NOW),
                Err(AuthError::UnsupportedAlgorithm(_))
            ),
            "{alg}"
        );
    }
    // An ES256K token signed with a real key is not a session token.
    let key = SigningKey::generate(Algorithm::K256);
    let es = create_service_jwt(
        &key,
        &ServiceJwtParams::new(did().as_str(), SERVICE_DID, None),
    )
    .unwrap();
    assert!(matches!(
        auth.verify_access_at(&es, &all, NOW),
        Err(AuthError::AlgorithmMismatch { .. })
    ));

    // Wrong audience.
    let mut claims = access_claims();
    claims["aud"] = json!("did:web:other.example.com");
    let token = hs256_token(&at, &claims, SECRET.as_bytes());
    assert_eq!(
        auth.verify_access_at(&token, &all, NOW).unwrap_err(),
        AuthError::BadAudience
    );

    // Missing or other typ.
    for header in [
        json!({"alg": "HS256"}),
        json!({"typ": "JWT", "alg": "HS256"}),
        json!({"typ": "dpop+jwt", "alg": "HS256"}),
    ] {
        let token = hs256_token(&header, &access_claims(), SECRET.as_bytes());
        assert!(
            matches!(
                auth.verify_access_at(&token, &all, NOW),
                Err(AuthError::BadType(_))
            ),
            "{header}"
        );
    }

    // Tampered claims keep the old MAC.
    let session = auth
        .create_session_at(&did(), AuthScope::AppPass, None, NOW)
        .unwrap();
    let parts: Vec<&str> = session.access_jwt.split('.').collect();
    let mut claims = decode_segment(&session.access_jwt, 1);
    claims["scope"] = json!("com.atproto.access");
    let tampered = with_claims(&session.access_jwt, &claims);
    assert_eq!(
        auth.verify_access_at(&tampered, &all, NOW).unwrap_err(),
        AuthError::BadSignature
    );

    // Not a DID subject, malformed tokens.
    let mut claims = access_claims();
    claims["sub"] = json!("alice.example.com");
    let token = hs256_token(&at, &claims, SECRET.as_bytes());
    assert!(matches!(
        auth.verify_access_at(&token, &all, NOW),
        Err(AuthError::BadIssuer(_))
    ));
    for bad in [
        "",
        "a.b",
        "a.b.c.d",
        "!!!.???.***",
        &format!("{}.{}.x", parts[0], B64.encode("[1]")),
    ] {
        assert!(
            matches!(
                auth.verify_access_at(bad, &all, NOW),
                Err(AuthError::Malformed(_))
            ),
            "{bad}"
        );
    }
    assert_eq!(
        SessionTokenAuthority::new("", SERVICE_DID).unwrap_err(),
        AuthError::EmptySecret
    );
}

#[test]
fn refresh_rotation_plan() {
    let grace = REFRESH_GRACE_PERIOD.as_secs() as i64;
    let stored = StoredRefreshToken {
        id: RefreshTokenId::new("old"),
        did: did(),
        expires_at: NOW + 90 * 24 * 3600,
        app_password_name: None,
        next_id: None,
    };
    let plan = stored.plan_rotation(NOW).unwrap();
    assert_eq!(plan.old_expires_at, NOW + grace);
    assert_ne!(plan.next_id.as_str(), "old");
    // Already rotated: the same next id comes back (concurrent refreshes).
    let rotated = StoredRefreshToken {
        next_id: Some(plan.next_id.clone()),
        expires_at: plan.old_expires_at,
        ..stored.clone()
    };
    let again = rotated.plan_rotation(NOW + 60).unwrap();
    assert_eq!(again.next_id, plan.next_id);
    assert_eq!(again.old_expires_at, NOW + grace);
    // Past its (shortened) expiry: refused.
    assert!(rotated.plan_rotation(NOW + grace).is_none());
}

// ---- service tokens ----

const ISS: &str = "did:plc:7iza6de2dwap2sbkpav7c6c6";
const AUD: &str = "did:web:appview.example.com";
const LXM: &str = "app.bsky.feed.getTimeline";

fn params() -> ServiceJwtParams {
    ServiceJwtParams {
        iat: Some(NOW),
        ..ServiceJwtParams::new(ISS, AUD, Some(LXM))
    }
}

fn resolver_for(
    key: PublicKey,
) -> impl Fn(String, bool) -> std::future::Ready<Result<PublicKey, AuthError>> {
    move |iss: String, _fresh: bool| {
        assert_eq!(iss.split('#').next(), Some(ISS));
        std::future::ready(Ok(key.clone()))
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn verifier() -> ServiceJwtVerifier {
    ServiceJwtVerifier::new(Some(AUD), Some(LXM))
}

#[test]
fn service_tokens_round_trip_on_both_curves() {
    for alg in [Algorithm::K256, Algorithm::P256] {
        let key = SigningKey::generate(alg);
        let jwt = create_service_jwt(&key, &params()).unwrap();
        assert_eq!(
            decode_segment(&jwt, 0),
            json!({"typ": "JWT", "alg": alg.jwt_alg()})
        );
        let claims = decode_segment(&jwt, 1);
        assert_eq!(claims["iss"], ISS);
        assert_eq!(claims["aud"], AUD);
        assert_eq!(claims["lxm"], LXM);
        assert_eq!(claims["iat"], NOW);
        assert_eq!(claims["exp"], NOW + 60);
        assert_eq!(claims["jti"].as_str().unwrap().len(), 32);
        // The signature is the 64-byte compact form, verifiable directly.
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let sig = B64.decode(sig).unwrap();
        assert_eq!(sig.len(), 64);
        key.public_key().verify(input.as_bytes(), &sig).unwrap();

        let verified =
            block_on(verifier().verify_at(&jwt, &resolver_for(key.public_key()), NOW + 1)).unwrap();
        assert_eq!(verified.iss, ISS);
        assert_eq!(verified.lxm.as_deref(), Some(LXM));
        // Strict mode accepts our (low-S) signatures.
        let strict = verifier().with_signature_mode(VerifyMode::Strict);
        block_on(strict.verify_at(&jwt, &resolver_for(key.public_key()), NOW + 1)).unwrap();
    }
}

#[test]
fn service_token_rejections() {
    let key = SigningKey::generate(Algorithm::K256);
    let resolver = resolver_for(key.public_key());
    let jwt = create_service_jwt(&key, &params()).unwrap();
    let verify =
        |v: &ServiceJwtVerifier, t: &str, now: i64| block_on(v.verify_at(t, &resolver, now));

    // Expired: now past exp.
    let err = verify(&verifier(), &jwt, NOW + 61).unwrap_err();
    assert_eq!(err, AuthError::Expired);
    assert_eq!(err.service_error_name(), "JwtExpired");
    assert!(verify(&verifier(), &jwt, NOW + 60).is_ok());

    // Audience and lexicon method.
    let other_aud = ServiceJwtVerifier::new(Some("did:web:other.example.com"), Some(LXM));
    assert_eq!(
        verify(&other_aud, &jwt, NOW).unwrap_err(),
        AuthError::BadAudience
    );
    let other_lxm = ServiceJwtVerifier::new(Some(AUD), Some("com.atproto.repo.createRecord"));
    let err = verify(&other_lxm, &jwt, NOW).unwrap_err();
    assert!(matches!(
        err,
        AuthError::BadLexiconMethod { found: Some(_), .. }
    ));
    assert_eq!(
        err.to_string(),
        "bad jwt lexicon method (\"lxm\"). must match: com.atproto.repo.createRecord"
    );
    let no_lxm = create_service_jwt(
        &key,
        &ServiceJwtParams {
            lxm: None,
            ..params()
        },
    )
    .unwrap();
    assert!(matches!(
        verify(&verifier(), &no_lxm, NOW),
        Err(AuthError::BadLexiconMethod { found: None, .. })
    ));
    // Checks skipped when not asked for.
    verify(&ServiceJwtVerifier::new(None, None), &no_lxm, NOW).unwrap();

    // Wrong key (another account's).
    let other = SigningKey::generate(Algorithm::K256);
    let forged = create_service_jwt(&other, &params()).unwrap();
    assert_eq!(
        verify(&verifier(), &forged, NOW).unwrap_err(),
        AuthError::BadSignature
    );

    // Tampered claims.
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut claims = decode_segment(&jwt, 1);
    claims["aud"] = json!("did:web:appview.example.com");
    claims["lxm"] = json!("com.atproto.repo.deleteRecord");
    let tampered = with_claims(&jwt, &claims);
    assert_eq!(
        verify(&ServiceJwtVerifier::new(Some(AUD), None), &tampered, NOW).unwrap_err(),
        AuthError::BadSignature
    );

    // alg none, HS256 (with the public key bytes as the "secret"), and an
    // ES256 header over a secp256k1 key.
    let claims = decode_segment(&jwt, 1);
    let unsigned = format!(
        "{}.{}.",
        B64.encode(br#"{"typ":"JWT","alg":"none"}"#),
        B64.encode(serde_json::to_vec(&claims).unwrap())
    );
    assert!(matches!(
        verify(&verifier(), &unsigned, NOW),
        Err(AuthError::UnsupportedAlgorithm(_))
    ));
    let hs = hs256_token(
        &json!({"typ": "JWT", "alg": "HS256"}),
        &claims,
        &key.public_key().to_compressed_bytes(),
    );
    assert!(matches!(
        verify(&verifier(), &hs, NOW),
        Err(AuthError::UnsupportedAlgorithm(_))
    ));
    let es256_header = format!(
        "{}.{}",
        B64.encode(br#"{"typ":"JWT","alg":"ES256"}"#),
        parts[1]
    );
    let sig = key.sign(es256_header.as_bytes());
    let confused = format!("{es256_header}.{}", B64.encode(sig));
    assert!(matches!(
        verify(&verifier(), &confused, NOW),
        Err(AuthError::AlgorithmMismatch { .. })
    ));

    // Session token types are not service tokens.
    for typ in ["at+jwt", "refresh+jwt", "dpop+jwt"] {
        let input = format!(
            "{}.{}",
            B64.encode(format!(r#"{{"typ":"{typ}","alg":"ES256K"}}"#)),
            parts[1]
        );
        let token = format!("{input}.{}", B64.encode(key.sign(input.as_bytes())));
        assert_eq!(
            verify(&verifier(), &token, NOW).unwrap_err(),
            AuthError::BadType(Some(typ.into()))
        );
    }

    // Issuer must be a DID or did#service.
    for (iss, ok) in [
        ("did:plc:7iza6de2dwap2sbkpav7c6c6#atproto_labeler", true),
        ("alice.example.com", false),
        ("did:plc:x#", false),
        ("did:plc:x#a#b", false),
    ] {
        let mut c = claims.clone();
        c["iss"] = json!(iss);
        let input = format!(
            "{}.{}",
            parts[0],
            B64.encode(serde_json::to_vec(&c).unwrap())
        );
        let token = format!("{input}.{}", B64.encode(key.sign(input.as_bytes())));
        let res = verify(&verifier(), &token, NOW);
        assert_eq!(res.is_ok(), ok, "{iss}: {res:?}");
        if !ok {
            assert!(matches!(res, Err(AuthError::BadIssuer(_))));
        }
    }
    assert!(create_service_jwt(&key, &ServiceJwtParams::new("not a did", AUD, None)).is_err());

    // Malformed.
    for bad in ["", "a.b", "a.b.c.d", "e30.e30.", "e30.e30.AA"] {
        assert!(
            matches!(verify(&verifier(), bad, NOW), Err(AuthError::Malformed(_))),
            "{bad}"
        );
    }
}

/// Flips `s` to `n - s`: the other valid, high-S form of the signature.
fn to_high_s(alg: Algorithm, sig: &[u8]) -> Vec<u8> {
    let order: [u8; 32] = match alg {
        Algorithm::K256 => {
            hex32("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
        }
        Algorithm::P256 => {
            hex32("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")
        }
    };
    let mut out = sig[..32].to_vec();
    let s = &sig[32..];
    let mut result = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = order[i] as i16 - s[i] as i16 - borrow;
        borrow = if d < 0 {
            d += 256;
            1
        } else {
            0
        };
        result[i] = d as u8;
    }
    out.extend_from_slice(&result);
    out
}

fn hex32(h: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[test]
fn high_s_signatures_follow_the_reference_by_default_and_fail_when_strict() {
    for alg in [Algorithm::K256, Algorithm::P256] {
        let key = SigningKey::generate(alg);
        let resolver = resolver_for(key.public_key());
        let jwt = create_service_jwt(&key, &params()).unwrap();
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let high = to_high_s(alg, &B64.decode(sig).unwrap());
        let malleated = format!("{input}.{}", B64.encode(&high));
        // The reference verifyJwt accepts malleable signatures.
        block_on(verifier().verify_at(&malleated, &resolver, NOW)).unwrap();
        let strict = verifier().with_signature_mode(VerifyMode::Strict);
        assert_eq!(
            block_on(strict.verify_at(&malleated, &resolver, NOW)).unwrap_err(),
            AuthError::BadSignature
        );
    }
}

#[test]
fn a_rotated_key_is_fetched_again() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let old = SigningKey::generate(Algorithm::K256);
    let new = SigningKey::generate(Algorithm::P256);
    let jwt = create_service_jwt(&new, &params()).unwrap();
    let calls = AtomicUsize::new(0);
    let resolver = |_iss: String, fresh: bool| {
        calls.fetch_add(1, Ordering::SeqCst);
        let key = if fresh {
            new.public_key()
        } else {
            old.public_key()
        };
        std::future::ready(Ok::<_, AuthError>(key))
    };
    block_on(verifier().verify_at(&jwt, &resolver, NOW)).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // Without a new key the failure stands, after one refresh attempt.
    calls.store(0, Ordering::SeqCst);
    let stale = |_iss: String, _fresh: bool| {
        calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok::<_, AuthError>(old.public_key()))
    };
    assert!(block_on(verifier().verify_at(&jwt, &stale, NOW)).is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // Resolver failures surface as such.
    let failing = |_iss: String, _fresh: bool| {
        std::future::ready(Err::<PublicKey, _>(AuthError::KeyResolution(
            "no such DID".into(),
        )))
    };
    assert!(matches!(
        block_on(verifier().verify_at(&jwt, &failing, NOW)),
        Err(AuthError::KeyResolution(_))
    ));
}
