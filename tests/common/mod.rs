//! Helpers shared by the integration tests: a copy of the demo in a temporary folder, the
//! `.eml` spool read back as decoded messages, the test AD DC (`ad`) and a live case against it (`case`) and an emulator of the
//! Google Sheets API and its token endpoint (`sheets`).

#![allow(dead_code)]
// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod ad;
pub mod case;
pub mod sheets;
pub mod smtp;

use std::path::{Path, PathBuf};

use cuentas::config::Config;

/// The demo fixture copied into a temporary folder, so each test has its own store and spool.
pub struct Demo {
    pub dir: tempfile::TempDir,
}

impl Demo {
    pub fn new() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
        for name in ["cuentas.toml", "respuestas.csv", "autorizadores.csv", "directorio.json", "mesa.csv"] {
            std::fs::copy(src.join(name), dir.path().join(name)).unwrap();
        }
        Demo { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn config(&self) -> Config {
        Config::load(&self.path("cuentas.toml")).unwrap()
    }

    pub fn responses(&self) -> String {
        std::fs::read_to_string(self.path("respuestas.csv")).unwrap()
    }

    pub fn write_responses(&self, text: &str) {
        std::fs::write(self.path("respuestas.csv"), text).unwrap();
    }

    /// The demo without its service desk's responses (the header stays): for the tests of the
    /// CLI's commands on the requests the desk form would otherwise act on.
    pub fn without_desk_responses(&self) -> &Demo {
        let desk = std::fs::read_to_string(self.path("mesa.csv")).unwrap();
        std::fs::write(self.path("mesa.csv"), format!("{}\n", desk.lines().next().unwrap())).unwrap();
        self
    }

    /// Every message in the spool, decoded.
    pub fn mails(&self) -> Vec<Mail> {
        let spool = self.path("var/correo");
        let Ok(entries) = std::fs::read_dir(&spool) else {
            return Vec::new();
        };
        let mut mails: Vec<Mail> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .map(|p| Mail::parse(&std::fs::read_to_string(p).unwrap()))
            .collect();
        mails.sort_by(|a, b| a.message_id.cmp(&b.message_id));
        mails
    }
}

/// A message from the spool with its headers and decoded body.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub message_id: String,
    pub body: String,
    pub raw: String,
}

impl Mail {
    pub fn parse(raw: &str) -> Mail {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap();
        // Unfold continuation lines of headers.
        let head = head.replace("\n ", " ").replace("\n\t", " ");
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .map(decode_words)
                .unwrap_or_default()
        };
        let body = text_part(&head, body, &raw);
        Mail {
            to: header("To"),
            subject: header("Subject"),
            message_id: header("Message-ID"),
            body,
            raw: raw.clone(),
        }
    }
}

/// The text/plain part of a message, however deep (multipart/related holding an alternative).
fn text_part(head: &str, body: &str, raw: &str) -> String {
    match head.lines().find_map(|l| l.split_once("boundary=")) {
        Some((_, b)) => {
            let boundary = format!("--{}", b.trim().trim_matches('"'));
            let part = body
                .split(boundary.as_str())
                .find(|p| p.contains("Content-Type: text/plain"))
                .unwrap_or_else(|| panic!("no text/plain part in {raw}"));
            let (part_head, part_body) = part.trim_start_matches('\n').split_once("\n\n").unwrap();
            let part_head = part_head.replace("\n ", " ").replace("\n\t", " ");
            text_part(&part_head, part_body.trim_end_matches(['\n', '\r']), raw)
        }
        None => decode_body(head, body),
    }
}

fn decode_body(head: &str, body: &str) -> String {
    if head.contains("Content-Transfer-Encoding: quoted-printable") {
        decode_qp(body)
    } else if head.contains("Content-Transfer-Encoding: base64") {
        String::from_utf8(base64_decode(&body.replace('\n', ""))).unwrap()
    } else {
        body.to_string()
    }
}

fn decode_qp(s: &str) -> String {
    let s = s.replace("=\n", "");
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn base64_decode(s: &str) -> Vec<u8> {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = T.iter().position(|t| *t == c).unwrap() as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    out
}

/// RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`) in a header; the space between
/// two encoded words is not part of the text.
fn decode_words(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let between = &rest[..start];
        if !(after_word && between.trim().is_empty()) {
            out.push_str(between);
        }
        let mut parts = rest[start + 2..].splitn(3, '?');
        let _charset = parts.next().unwrap();
        let encoding = parts.next().unwrap().to_ascii_lowercase();
        let tail = parts.next().unwrap();
        let end = tail.find("?=").unwrap();
        let text = &tail[..end];
        if encoding == "b" {
            out.push_str(&String::from_utf8(base64_decode(text)).unwrap());
        } else {
            out.push_str(&decode_qp(&text.replace('_', " ")));
        }
        rest = &tail[end + 2..];
        after_word = true;
    }
    out.push_str(rest);
    out
}

const GIVEN: [&str; 12] = [
    "Ana",
    "Luis",
    "María",
    "José",
    "Camila",
    "Andrés",
    "Sofía",
    "Julián",
    "Valentina",
    "Óscar",
    "Lucía",
    "Tomás",
];
const SURNAMES: [&str; 12] = [
    "Pérez",
    "Gómez",
    "De La Hoz",
    "Núñez",
    "Rodríguez",
    "Martínez",
    "Peña",
    "Ospina",
    "Díaz",
    "Quiñones",
    "Ruiz",
    "Muñoz",
];

/// `n` creation requests for contractors of one supervisor, with frequent name collisions and
/// unique document numbers, in the demo's columns.
pub fn generated_rows(n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let given = format!("{} {}", GIVEN[i % 12], GIVEN[(i / 12) % 12]);
        let surnames = format!("{} {}", SURNAMES[(i / 7) % 12], SURNAMES[(i / 144) % 12]);
        out.push_str(&format!(
            "27/11/2026 07:{:02}:{:02},andres.mejia@upme.gov.co,Creación de cuenta,Contratista,{given},{surnames},CC,{},p{i}@gmail.com,Subdirección de Energía Eléctrica,Contratista,,C-{i},01/12/2026,30/06/2027,,,,,,\n",
            (i / 60) % 60,
            i % 60,
            1_000_000_000 + i
        ));
    }
    out
}

/// A daemon process, killed if the test ends before it is stopped.
pub struct Daemon(pub std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
