//! Bad input gets a clear 4xx problem and changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Client, PASSWORD, TestApp, assert_problem};

crate::on_both_backends!(bad_input_is_refused_and_changes_nothing);

const JSON: &str = "application/json";

/// (what, method, path, body, content type, expected status)
type Case = (
    &'static str,
    Method,
    String,
    Option<Vec<u8>>,
    &'static str,
    u16,
);

fn json_case(what: &'static str, method: Method, path: &str, body: Value, status: u16) -> Case {
    (
        what,
        method,
        path.to_owned(),
        Some(body.to_string().into_bytes()),
        JSON,
        status,
    )
}

fn cases(email: &str) -> Vec<Case> {
    use Method as M;
    let reg = "/api/auth/register";
    let good = |extra: Value| {
        let mut body =
            json!({"email": "new@example.com", "password": PASSWORD, "display_name": "N"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        body
    };
    let big = vec![b'x'; 100 * 1024];
    let mut big_json = b"{\"bio\":\"".to_vec();
    big_json.extend(&big);
    big_json.extend(b"\"}");
    vec![
        (
            "register: malformed JSON",
            M::POST,
            reg.into(),
            Some(b"{".to_vec()),
            JSON,
            400,
        ),
        (
            "register: array body",
            M::POST,
            reg.into(),
            Some(b"[]".to_vec()),
            JSON,
            422,
        ),
        (
            "register: null body",
            M::POST,
            reg.into(),
            Some(b"null".to_vec()),
            JSON,
            422,
        ),
        json_case(
            "register: missing fields",
            M::POST,
            reg,
            json!({"email": "a@b.co"}),
            422,
        ),
        json_case(
            "register: unknown field",
            M::POST,
            reg,
            good(json!({"admin": true})),
            422,
        ),
        json_case(
            "register: email wrong type",
            M::POST,
            reg,
            good(json!({"email": 7})),
            422,
        ),
        json_case(
            "register: invalid email",
            M::POST,
            reg,
            good(json!({"email": "nope"})),
            422,
        ),
        json_case(
            "register: taken email",
            M::POST,
            reg,
            good(json!({"email": email})),
            409,
        ),
        json_case(
            "register: short password",
            M::POST,
            reg,
            good(json!({"password": "short"})),
            422,
        ),
        json_case(
            "register: huge password",
            M::POST,
            reg,
            good(json!({"password": "ab1!".repeat(100)})),
            422,
        ),
        json_case(
            "register: name too long",
            M::POST,
            reg,
            good(json!({"display_name": "n".repeat(51)})),
            422,
        ),
        json_case(
            "register: empty name",
            M::POST,
            reg,
            good(json!({"display_name": "  "})),
            422,
        ),
        (
            "register: no content type",
            M::POST,
            reg.into(),
            Some(good(json!({})).to_string().into_bytes()),
            "",
            415,
        ),
        (
            "register: text/plain",
            M::POST,
            reg.into(),
            Some(good(json!({})).to_string().into_bytes()),
            "text/plain",
            415,
        ),
        (
            "register: 100 KiB body",
            M::POST,
            reg.into(),
            Some(big_json.clone()),
            JSON,
            413,
        ),
        (
            "register: invalid UTF-8",
            M::POST,
            reg.into(),
            Some(vec![b'{', b'"', 0xff, 0xfe, b'"', b'}']),
            JSON,
            400,
        ),
        (
            "login: malformed JSON",
            M::POST,
            "/api/auth/login".into(),
            Some(b"{\"email\":".to_vec()),
            JSON,
            400,
        ),
        json_case(
            "login: unknown field",
            M::POST,
            "/api/auth/login",
            json!({"email": email, "password": PASSWORD, "remember": 1}),
            422,
        ),
        json_case(
            "login: email is a list",
            M::POST,
            "/api/auth/login",
            json!({"email": [email], "password": PASSWORD}),
            422,
        ),
        json_case(
            "profile: bio too long",
            M::PATCH,
            "/api/users/me",
            json!({"bio": "b".repeat(2001)}),
            422,
        ),
        json_case(
            "profile: too many subjects",
            M::PATCH,
            "/api/users/me",
            json!({"subjects": vec!["s"; 21]}),
            422,
        ),
        json_case(
            "profile: subject too long",
            M::PATCH,
            "/api/users/me",
            json!({"subjects": ["s".repeat(61)]}),
            422,
        ),
        json_case(
            "profile: subjects not a list",
            M::PATCH,
            "/api/users/me",
            json!({"subjects": "maths"}),
            422,
        ),
        json_case(
            "profile: unknown timezone",
            M::PATCH,
            "/api/users/me",
            json!({"timezone": "Europe/Atlantis"}),
            422,
        ),
        json_case(
            "profile: unknown level",
            M::PATCH,
            "/api/users/me",
            json!({"level": "expert"}),
            422,
        ),
        json_case(
            "profile: bad time",
            M::PATCH,
            "/api/users/me",
            json!({"availability": [{"day": "mon", "start": "25:00", "end": "26:00"}]}),
            422,
        ),
        json_case(
            "profile: bad day",
            M::PATCH,
            "/api/users/me",
            json!({"availability": [{"day": "funday", "start": "10:00", "end": "11:00"}]}),
            422,
        ),
        json_case(
            "profile: window ends first",
            M::PATCH,
            "/api/users/me",
            json!({"availability": [{"day": "mon", "start": "12:00", "end": "11:00"}]}),
            422,
        ),
        json_case(
            "profile: script URL avatar",
            M::PATCH,
            "/api/users/me",
            json!({"avatar_url": "javascript:alert(1)"}),
            422,
        ),
        json_case(
            "profile: e-mail not editable",
            M::PATCH,
            "/api/users/me",
            json!({"email": "x@example.com"}),
            422,
        ),
        json_case(
            "profile: newline in name",
            M::PATCH,
            "/api/users/me",
            json!({"display_name": "a\nb"}),
            422,
        ),
        json_case(
            "profile: goals wrong type",
            M::PATCH,
            "/api/users/me",
            json!({"goals": 42}),
            422,
        ),
        (
            "profile: 100 KiB body",
            M::PATCH,
            "/api/users/me".into(),
            Some(big_json),
            JSON,
            413,
        ),
        (
            "user: id not a UUID",
            M::GET,
            "/api/users/not-a-uuid".into(),
            None,
            "",
            400,
        ),
        (
            "session: id too short",
            M::DELETE,
            "/api/auth/sessions/xyz".into(),
            None,
            "",
            400,
        ),
        (
            "session: id upper-case",
            M::DELETE,
            format!("/api/auth/sessions/{}", "A".repeat(64)),
            None,
            "",
            400,
        ),
        (
            "session: unknown id",
            M::DELETE,
            format!("/api/auth/sessions/{}", "a".repeat(64)),
            None,
            "",
            404,
        ),
        (
            "password: malformed",
            M::POST,
            "/api/auth/password".into(),
            Some(b"}".to_vec()),
            JSON,
            400,
        ),
        json_case(
            "password: weak new one",
            M::POST,
            "/api/auth/password",
            json!({"current_password": PASSWORD, "new_password": "1234567890"}),
            422,
        ),
        (
            "delete account: no body",
            M::DELETE,
            "/api/users/me".into(),
            None,
            "",
            415,
        ),
        json_case(
            "delete account: unknown field",
            M::DELETE,
            "/api/users/me",
            json!({"password": PASSWORD, "force": true}),
            422,
        ),
        (
            "wrong method",
            M::PUT,
            "/api/users/me".into(),
            None,
            "",
            405,
        ),
        (
            "unknown endpoint",
            M::GET,
            "/api/nope".into(),
            None,
            "",
            404,
        ),
    ]
}

async fn bad_input_is_refused_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (client, email) = app.signed_up().await;
    let before = client.get("/api/users/me").await.body;
    let cookie = client.cookie();
    let cases = cases(&email);
    assert!(cases.len() >= 30);
    for (what, method, path, body, content_type, status) in cases {
        let body = body.map(|b| (b, content_type));
        let res = client.raw(method, &path, body).await;
        let status = StatusCode::from_u16(status).expect("status");
        assert_eq!(res.status, status, "{what}: {}", res.body);
        assert_problem(&res, status);
        assert_eq!(client.cookie(), cookie, "{what}: the session changed");
    }
    assert_eq!(
        client.get("/api/users/me").await.body,
        before,
        "profile changed"
    );
    assert_eq!(
        client
            .get("/api/auth/sessions")
            .await
            .body
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        Client::new(&app.url).login(&email, PASSWORD).await.status,
        StatusCode::OK
    );
    assert_problem(
        &Client::new(&app.url)
            .login("new@example.com", PASSWORD)
            .await,
        StatusCode::UNAUTHORIZED,
    );
}
