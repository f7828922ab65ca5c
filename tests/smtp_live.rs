//! Live mail tests against a real SMTP server (Debian's aiosmtpd, `tests/smtp_sink.py`, with
//! STARTTLS on a test CA): messages read back from its Maildir, an outage, a rejected address.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Mail;
use common::ad::{header, row};
use common::smtp::{Env, Sink, env};
use cuentas::engine::Engine;
use cuentas::request::StateName;
use jiff::{SignedDuration, Timestamp};

/// The demo's matrix and directory, mail through the SMTP server on `port`.
fn setup(env: &Env, dir: &Path, rows: &[String], port: u16) -> PathBuf {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    for f in ["autorizadores.csv", "directorio.json"] {
        std::fs::copy(demo.join(f), dir.join(f)).unwrap();
    }
    // The service desk's form without responses: these tests are about mail.
    let desk = std::fs::read_to_string(demo.join("mesa.csv")).unwrap();
    std::fs::write(dir.join("mesa.csv"), format!("{}\n", desk.lines().next().unwrap())).unwrap();
    std::fs::write(dir.join("respuestas.csv"), format!("{}\n{}", header(), rows.concat())).unwrap();
    let config = std::fs::read_to_string(demo.join("cuentas.toml")).unwrap();
    let config = common::smtp::through(&config, env, port);
    std::fs::write(dir.join("cuentas.toml"), config).unwrap();
    dir.join("cuentas.toml")
}

/// A temporary folder set up for `rows` ([`setup`]) with a mail server of its own: the folder,
/// the server and the configuration's path.
fn with_sink(env: &Env, rows: &[String]) -> (tempfile::TempDir, Sink, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(env, &dir.path().join("Maildir"), 0);
    let config = setup(env, dir.path(), rows, sink.port);
    (dir, sink, config)
}

fn load_engine(config: &Path) -> Engine {
    Engine::new(cuentas::config::Config::load(config).unwrap()).unwrap()
}

fn creation(personal: &str) -> String {
    row(&[
        ("requester", "andres.mejia@upme.gov.co"),
        ("kind", "Creación de cuenta"),
        ("holder_type", "Contratista"),
        ("given_names", "María José"),
        ("surnames", "De La Hoz Peñaloza"),
        ("id_type", "Cédula de ciudadanía"),
        ("id_number", "1045678901"),
        ("personal_email", personal),
        ("department", "Subdirección de Energía Eléctrica"),
        ("title", "Contratista - Ingeniera eléctrica"),
        ("contract_number", "UPME-123-2026"),
        ("contract_start", "01/12/2026"),
        ("contract_end", "30/06/2027"),
    ])
}

fn t(minutes: i64) -> Timestamp {
    "2026-11-27T13:00:00Z".parse::<Timestamp>().unwrap() + SignedDuration::from_mins(minutes)
}

fn password_in(m: &Mail) -> String {
    m.body.lines().find_map(|l| l.trim().strip_prefix("Contraseña temporal: ")).unwrap().to_string()
}

#[test]
#[ignore = "live: the test SMTP relay (tests/run.sh runs it)"]
fn a_creation_mails_the_requester_and_the_new_user_and_the_password_is_nowhere_else() {
    let env = env();
    let (dir, sink, config) = with_sink(&env, &[creation("mariajo.delahoz@gmail.com")]);
    let out = Command::new(env!("CARGO_BIN_EXE_cuentas"))
        .args(["run", "--once", "--config"])
        .arg(&config)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut mails = sink.mails();
    mails.sort_by(|a, b| a.message_id.cmp(&b.message_id));
    let kinds: Vec<(&str, &str)> =
        mails.iter().map(|m| (m.message_id.split('.').nth(2).unwrap_or(""), m.to.as_str())).collect();
    assert_eq!(
        kinds,
        [
            ("acuse@upme", "andres.mejia@upme.gov.co"),
            ("datos-de-acceso@upme", "mariajo.delahoz@gmail.com"),
            ("resultado@upme", "andres.mejia@upme.gov.co"),
        ],
        "{mails:#?}"
    );
    for m in &mails {
        assert!(m.message_id.starts_with("<GU-2026-000001."), "{}", m.message_id);
    }
    assert_eq!(mails[0].subject, "[GU-2026-000001] Solicitud registrada: Creación de cuenta");
    assert!(
        mails[1].body.contains("Cordial saludo,\n\nMaría José De La Hoz Peñaloza:\n"),
        "{}",
        mails[1].body
    );
    assert!(mails[1].body.contains("Usuario de red: maria.delahoz"));
    assert!(mails[2].body.contains("Se creó la cuenta maria.delahoz"));
    assert!(mails[2].body.contains("m***@gmail.com"));

    let password = password_in(&mails[1]);
    assert_eq!(password.len(), 16);
    let everywhere: Vec<&Mail> =
        mails.iter().filter(|m| m.raw.contains(&password) || m.body.contains(&password)).collect();
    assert_eq!(everywhere.len(), 1, "the password is in the access-data message only");
    let logs = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(logs.contains("GU-2026-000001"), "the logs speak of the request");
    assert!(!logs.contains(&password), "the password is not logged");
    for file in walk(&dir.path().join("var/estado")) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!bytes.windows(password.len()).any(|w| w == password.as_bytes()), "{}", file.display());
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
        }
    }
    out
}

#[test]
#[ignore = "live: the test SMTP relay (tests/run.sh runs it)"]
fn an_outage_loses_nothing_and_repeats_at_most_once() {
    let env = env();
    let (dir, mut sink, config) = with_sink(&env, &[creation("mariajo.delahoz@gmail.com")]);
    let (maildir, port) = (sink.maildir.clone(), sink.port);
    let mut engine = load_engine(&config);
    engine.cycle(t(0)).unwrap();
    assert_eq!(sink.mails().len(), 3);

    // The server goes down; new responses arrive meanwhile.
    sink.stop();
    let more = [
        row(&[
            ("requester", "talentohumano@upme.gov.co"),
            ("kind", "Creación de cuenta"),
            ("holder_type", "Funcionario"),
            ("given_names", "Ángela"),
            ("surnames", "Müller Ibáñez"),
            ("id_number", "1015777888"),
            ("personal_email", "angela.muller@gmail.com"),
            ("department", "GIT de Talento Humano"),
            ("title", "Profesional Universitaria"),
        ]),
        row(&[("requester", "ana.gomez@upme.gov.co"), ("kind", "Instalación de software")]),
    ];
    let text = std::fs::read_to_string(dir.path().join("respuestas.csv")).unwrap() + &more.concat();
    std::fs::write(dir.path().join("respuestas.csv"), text).unwrap();
    engine.cycle(t(10)).unwrap();
    engine.cycle(t(10) + SignedDuration::from_secs(30)).unwrap();
    let waiting: Vec<StateName> = engine.store().requests().map(|r| r.unwrap().state.name()).collect();
    assert_eq!(
        waiting,
        [StateName::Closed, StateName::Executing, StateName::Routed],
        "nothing is lost meanwhile"
    );

    // Back a minute later: everything arrives.
    let sink = Sink::start(&env, &maildir, port);
    for minute in [11, 13, 17, 30] {
        engine.cycle(t(minute)).unwrap();
    }
    let states: Vec<StateName> = engine.store().requests().map(|r| r.unwrap().state.name()).collect();
    assert_eq!(states, [StateName::Closed, StateName::Closed, StateName::Routed]);
    let mails = sink.mails();
    let mut ids: Vec<&str> = mails.iter().map(|m| m.message_id.as_str()).collect();
    ids.sort();
    let mut unique = ids.clone();
    unique.dedup();
    for id in &unique {
        assert!(ids.iter().filter(|i| *i == id).count() <= 2, "{id} more than twice");
    }
    let to = |who: &str| mails.iter().filter(|m| m.to == who).count();
    assert_eq!(to("angela.muller@gmail.com"), 1, "one access-data message, with the password that works");
    assert_eq!(to("talentohumano@upme.gov.co"), 2, "acknowledgement and outcome");
    assert_eq!(to("ana.gomez@upme.gov.co"), 1, "the routed answer");
    assert_eq!(unique.len(), 7, "three before the outage, four after");
}

#[test]
#[ignore = "live: the test SMTP relay (tests/run.sh runs it)"]
fn a_rejected_personal_address_asks_the_requester_and_an_edit_sends_a_new_password() {
    let env = env();
    let (dir, sink, config) = with_sink(&env, &[creation("maria.rechazado@gmail.com")]);
    let mut engine = load_engine(&config);
    engine.cycle(t(0)).unwrap();
    let r = engine.store().requests().next().unwrap().unwrap();
    assert_eq!(r.state.name(), StateName::NeedsInfo, "{:?}", r.state);
    assert!(r.state.reason().contains("maria.rechazado@gmail.com"), "{}", r.state.reason());
    let asked = sink.mails().into_iter().find(|m| m.message_id.contains("informacion-requerida")).unwrap();
    assert_eq!(asked.to, "andres.mejia@upme.gov.co");
    assert!(asked.body.contains("corrija el correo electrónico personal"), "{}", asked.body);
    assert!(sink.mails().iter().all(|m| !m.body.contains("Contraseña temporal")));

    let text = std::fs::read_to_string(dir.path().join("respuestas.csv")).unwrap();
    std::fs::write(
        dir.path().join("respuestas.csv"),
        text.replace("maria.rechazado@gmail.com", "mariajo.delahoz@gmail.com"),
    )
    .unwrap();
    engine.cycle(t(30)).unwrap();
    let r = engine.store().requests().next().unwrap().unwrap();
    assert_eq!(r.state.name(), StateName::Closed, "{:?}", r.state);
    let access: Vec<Mail> =
        sink.mails().into_iter().filter(|m| m.message_id.contains("datos-de-acceso")).collect();
    assert_eq!(access.len(), 1);
    assert_eq!(access[0].to, "mariajo.delahoz@gmail.com");
    assert_eq!(password_in(&access[0]).len(), 16);
}

#[test]
#[ignore = "live: the test SMTP relay (tests/run.sh runs it)"]
fn a_message_refused_for_good_alerts_the_administrators_once() {
    let env = env();
    let rows = [row(&[("requester", "alguien.rechazado@upme.gov.co"), ("kind", "Instalación de software")])];
    let (_dir, sink, config) = with_sink(&env, &rows);
    let mut engine = load_engine(&config);
    engine.cycle(t(0)).unwrap();
    engine.cycle(t(5)).unwrap();
    let r = engine.store().requests().next().unwrap().unwrap();
    assert_eq!(r.state.name(), StateName::Routed);
    assert!(r.history.iter().any(|h| h.reason.contains("no entregado")), "{:#?}", r.history);
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert_eq!(mails[0].to, "infraestructura@upme.gov.co");
    assert!(mails[0].body.contains("alguien.rechazado@upme.gov.co"));
}

/// A relay refusing every message: one ERROR line for the episode, however many messages wait.
#[test]
#[ignore = "live: the test SMTP relay (tests/run.sh runs it)"]
fn a_blocked_relay_is_one_error_line_and_the_messages_wait() {
    let env = env();
    let rows = [
        creation("mariajo.delahoz@gmail.com"),
        row(&[("requester", "andres.mejia@upme.gov.co"), ("kind", "Instalación de software")]),
    ];
    let (dir, sink, config) = with_sink(&env, &rows);
    std::fs::write(dir.path().join("Maildir.bloqueo"), "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cuentas"))
        .args(["run", "--once", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let blocked: Vec<&str> = stderr.lines().filter(|l| l.contains("mail is blocked")).collect();
    assert_eq!(blocked.len(), 1, "{stderr}");
    assert!(blocked[0].contains("ERROR") && blocked[0].contains("554"), "{}", blocked[0]);
    assert!(sink.mails().is_empty());
}

/// Issue 25: Microsoft 365 stops taking SMTP passwords. With `[mail.oauth2]` the token comes
/// from Entra ID's client credentials grant (emulated) and the relay takes only tokens the
/// endpoint issued: messages go out, a token revoked early is renewed once, and a credential
/// the endpoint refuses blocks mail as a refusing relay does, the messages waiting.
#[test]
#[ignore = "live: the test SMTP relay (tests/run.sh runs it)"]
fn mail_goes_out_with_an_oauth_token_renewed_once_and_waits_while_the_credential_is_refused() {
    let env = env();
    let dir = tempfile::tempdir().unwrap();
    let emu = common::sheets::Emulator::start("sin-hoja", "Hoja 1", "America/Bogota");
    let tokens = dir.path().join("tokens-entra");
    emu.entra("upme.gov.co", "5f0c7e0e-app", "Secreto~Entra.2026", &tokens);
    let mailbox = "mesadeservicio@upme.gov.co";
    let mut sink = Sink::with_xoauth2(&env, &dir.path().join("Maildir"), 0, mailbox, &tokens);
    let config = setup(&env, dir.path(), &[creation("mariajo.delahoz@gmail.com")], sink.port);
    let secret = dir.path().join("entra-secret");
    std::fs::write(&secret, "Secreto~Entra.2026").unwrap();
    let toml = std::fs::read_to_string(&config).unwrap().replace(
        "transport = \"smtp\"\n",
        "transport = \"smtp\"\nsmtp_username = \"mesadeservicio@upme.gov.co\"\n",
    ) + &format!(
        "\n[mail.oauth2]\nprovider = \"microsoft\"\ntenant = \"upme.gov.co\"\nclient_id = \"5f0c7e0e-app\"\nclient_secret = \"{}\"\ntoken_url = \"{}\"\n",
        secret.display(),
        emu.entra_token_url("upme.gov.co")
    );
    std::fs::write(&config, toml).unwrap();

    // check gets a token and logs in.
    let checked = Command::new(env!("CARGO_BIN_EXE_cuentas"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(
        said.contains("mail relay 127.0.0.1: takes the connection and the login"),
        "{said}\n{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert_eq!(emu.entra_tokens_issued(), 1);

    let mut engine = load_engine(&config);
    engine.cycle(t(0)).unwrap();
    let delivered = sink.mails().len();
    assert!(delivered >= 2, "the requester and the new user: {delivered}");
    assert_eq!(emu.entra_tokens_issued(), 2, "one token for the whole cycle");
    assert!(engine.mail_blocked().is_none());

    // Revoked before its time, and the relay restarted (a live session stays logged in): the
    // relay refuses the kept token, a new one is asked for once, mail goes on.
    emu.revoke_mail_tokens();
    let port = sink.port;
    sink.stop();
    sink = Sink::with_xoauth2(&env, &dir.path().join("Maildir"), port, mailbox, &tokens);
    append_rows(
        &config,
        &[row(&[("requester", "andres.mejia@upme.gov.co"), ("kind", "Instalación de software")])],
    );
    engine.cycle(t(5)).unwrap();
    assert_eq!(sink.mails().len(), delivered + 1);
    assert_eq!(emu.entra_tokens_issued(), 3);

    // The secret rotated in Entra but not here: no token, mail blocked, the messages wait.
    drop(engine);
    std::fs::write(&secret, "Secreto~Viejo.2025").unwrap();
    emu.revoke_mail_tokens();
    sink.stop();
    sink = Sink::with_xoauth2(&env, &dir.path().join("Maildir"), port, mailbox, &tokens);
    let mut engine = load_engine(&config);
    append_rows(
        &config,
        &[row(&[("requester", "andres.mejia@upme.gov.co"), ("kind", "Instalación de software")])],
    );
    engine.cycle(t(10)).unwrap();
    let blocked = engine.mail_blocked().unwrap_or_default().to_string();
    assert!(blocked.contains("refused the credential") && blocked.contains("invalid_client"), "{blocked}");
    assert_eq!(sink.mails().len(), delivered + 1, "nothing went out");
    let waiting = engine
        .store()
        .requests()
        .map(|r| r.unwrap())
        .flat_map(|r| r.outbox)
        .filter(|m| m.is_pending())
        .count();
    assert!(waiting >= 1, "the messages wait");
    // An outage of the endpoint passes: the secret put right, mail flows again after it.
    drop(engine);
    std::fs::write(&secret, "Secreto~Entra.2026").unwrap();
    emu.entra_down(1);
    let mut engine = load_engine(&config);
    engine.cycle(t(15)).unwrap();
    assert!(engine.mail_blocked().is_some_and(|b| b.contains("unavailable")), "{:?}", engine.mail_blocked());
    engine.cycle(t(60)).unwrap();
    assert!(engine.mail_blocked().is_none(), "{:?}", engine.mail_blocked());
    assert!(sink.mails().len() > delivered + 1);
}

fn append_rows(config: &Path, rows: &[String]) {
    let path = config.with_file_name("respuestas.csv");
    let text = std::fs::read_to_string(&path).unwrap() + &rows.concat();
    std::fs::write(path, text).unwrap();
}

/// A fixture of `tests/fixtures/entra/`: a self-signed certificate and its PKCS#8 key, made for
/// these tests only.
fn entra_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/entra").join(name)
}

/// A certificate instead of a client secret: each token request is a client assertion signed
/// with its key and naming it by thumbprint; Entra ID (emulated, checking as it does) issues a
/// token for the registered certificate and refuses another one, and a PEM whose key is not its
/// certificate's, or without a key, is said at once.
#[test]
fn an_entra_certificate_signs_for_the_token_and_an_unregistered_one_is_refused() {
    use cuentas::notify::oauth::{ClientCertificate, EntraCredential, TokenError, TokenSource, Tokens};
    let dir = tempfile::tempdir().unwrap();
    let emu = common::sheets::Emulator::start("sin-hoja", "Hoja 1", "America/Bogota");
    let tokens = dir.path().join("tokens-entra");
    emu.entra_with_certificate("upme.gov.co", "5f0c7e0e-app", &entra_fixture("certificado.pem"), &tokens);
    let source = |pem: &str, client_id: &str| TokenSource::Microsoft {
        token_url: emu.entra_token_url("upme.gov.co"),
        client_id: client_id.into(),
        credential: EntraCredential::Certificate(std::sync::Arc::new(
            ClientCertificate::from_pem(&std::fs::read_to_string(entra_fixture(pem)).unwrap()).unwrap(),
        )),
    };
    // Entra checks the assertion against its own clock, as the daemon's clock is the machine's.
    #[allow(clippy::disallowed_methods)]
    let now = Timestamp::now();
    let timeout = std::time::Duration::from_secs(10);
    let mut good = Tokens::new(source("certificado.pem", "5f0c7e0e-app"), timeout);
    let token = good.token(false, now).unwrap();
    assert_eq!(std::fs::read_to_string(&tokens).unwrap().trim(), token, "the token the relay will take");
    assert_eq!(emu.entra_tokens_issued(), 1);
    assert_eq!(good.token(false, now).unwrap(), token, "kept while it is good");
    assert_eq!(emu.entra_tokens_issued(), 1);

    let refused = |mut t: Tokens| match t.token(false, now) {
        Err(TokenError::Refused { reason, .. }) => reason,
        other => panic!("{:?}", other.map_err(|e| e.to_string())),
    };
    let other = refused(Tokens::new(source("otro-certificado.pem", "5f0c7e0e-app"), timeout));
    assert!(other.contains("invalid_client") && other.contains("AADSTS700027"), "{other}");
    let app = refused(Tokens::new(source("certificado.pem", "otra-app"), timeout));
    assert!(app.contains("AADSTS700016"), "{app}");
    assert_eq!(emu.entra_tokens_issued(), 1);

    // A PEM put together wrongly is said before any request.
    let text = |name: &str| std::fs::read_to_string(entra_fixture(name)).unwrap();
    let cert = |t: &str| t.split("-----BEGIN PRIVATE KEY-----").next().unwrap().to_string();
    let key = |t: &str| {
        format!("-----BEGIN PRIVATE KEY-----{}", t.split("-----BEGIN PRIVATE KEY-----").nth(1).unwrap())
    };
    let mixed = format!("{}{}", cert(&text("certificado.pem")), key(&text("otro-certificado.pem")));
    let err = |pem: &str| ClientCertificate::from_pem(pem).err().unwrap_or_default();
    assert!(err(&mixed).contains("not the certificate's"), "{}", err(&mixed));
    assert!(err(&cert(&text("certificado.pem"))).contains("no private key"));
    assert!(err(&key(&text("certificado.pem"))).contains("no certificate"));
}

/// End to end with the relay: `[mail.oauth2] client_certificate` gets the token that logs in.
#[test]
#[ignore = "live: the test SMTP relay (tests/run.sh runs it)"]
fn mail_logs_in_with_a_token_got_with_a_certificate() {
    let env = env();
    let dir = tempfile::tempdir().unwrap();
    let emu = common::sheets::Emulator::start("sin-hoja", "Hoja 1", "America/Bogota");
    let tokens = dir.path().join("tokens-entra");
    emu.entra_with_certificate("upme.gov.co", "5f0c7e0e-app", &entra_fixture("certificado.pem"), &tokens);
    let mailbox = "mesadeservicio@upme.gov.co";
    let sink = Sink::with_xoauth2(&env, &dir.path().join("Maildir"), 0, mailbox, &tokens);
    let config = setup(&env, dir.path(), &[creation("mariajo.delahoz@gmail.com")], sink.port);
    let check = |client: &str| {
        let toml = std::fs::read_to_string(&config).unwrap().replace(
            "transport = \"smtp\"\n",
            "transport = \"smtp\"\nsmtp_username = \"mesadeservicio@upme.gov.co\"\n",
        ) + &format!(
            "\n[mail.oauth2]\nprovider = \"microsoft\"\ntenant = \"upme.gov.co\"\nclient_id = \"5f0c7e0e-app\"\n\
             client_certificate = \"{}\"\ntoken_url = \"{}\"\n",
            entra_fixture(client).display(),
            emu.entra_token_url("upme.gov.co")
        );
        let with = dir.path().join("con-certificado.toml");
        std::fs::write(&with, toml).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_cuentas"))
            .args(["check", "--config"])
            .arg(&with)
            .output()
            .unwrap();
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };
    let said = check("certificado.pem");
    assert!(said.contains("mail relay 127.0.0.1: takes the connection and the login"), "{said}");
    assert!(
        said.contains("[mail.oauth2] client_certificate: a certificate and its key (thumbprint "),
        "{said}"
    );
    assert_eq!(emu.entra_tokens_issued(), 1);
    let said = check("otro-certificado.pem");
    assert!(said.contains("AADSTS700027"), "{said}");
    assert_eq!(emu.entra_tokens_issued(), 1);
}
