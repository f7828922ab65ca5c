//! The file transport: each message becomes an `.eml` file in a spool folder (lettre's
//! `FileTransport`), for demos, tests and sites that hand mail to another system.

use std::path::{Path, PathBuf};

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, Message, MultiPart};

use super::{Rendered, SendError};
use crate::config::Mailboxes;

/// Sender settings shared by every message.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// Right-hand side of Message-IDs, from the sender's domain.
    pub domain: String,
    /// The shadow week's administrators: every message goes to them instead, saying whom it
    /// was for (requesters, the service desk and its register hear nothing of a shadow).
    pub shadow: Option<Vec<Mailbox>>,
}

/// What a message sent in the shadow week says first, and its subject's mark.
const SHADOW_MARK: &str = "[MODO SOMBRA] ";

impl Envelope {
    /// The sender's settings; `shadow` sends every message to the administrators instead.
    pub fn new(mailboxes: &Mailboxes, shadow: bool) -> Envelope {
        let from = mailboxes.from.clone();
        let domain = from.email.domain().to_string();
        let shadow = shadow.then(|| mailboxes.administrators.clone());
        Envelope { from, reply_to: mailboxes.reply_to.clone(), domain, shadow }
    }

    /// The subject, text and recipients a message goes out with: in the shadow week, to the
    /// administrators, marked, saying first whom it would have gone to.
    fn redirected(&self, subject: &str, text: &str, to: Vec<String>) -> (String, String, Vec<String>) {
        match &self.shadow {
            None => (subject.to_string(), text.to_string(), to),
            Some(administrators) => (
                format!("{SHADOW_MARK}{subject}"),
                format!(
                    "MODO SOMBRA: cuentas no escribió nada en el directorio. Fuera del modo sombra, este mensaje \
                     habría ido a: {}.\n\n{text}",
                    to.join(", ")
                ),
                administrators.iter().map(ToString::to_string).collect(),
            ),
        }
    }

    /// A message with a Message-ID derived from `id`, so a repeated send is recognisable.
    pub fn message(&self, id: &str, to: &[String], rendered: &Rendered) -> Result<Message, SendError> {
        self.message_in_thread(id, to, rendered, None)
    }

    /// The same, answering the message whose id is `thread` (`In-Reply-To`, `References`), as
    /// the copies of a request's messages do under its service-desk ticket.
    pub fn message_in_thread(
        &self,
        id: &str,
        to: &[String],
        rendered: &Rendered,
        thread: Option<&str>,
    ) -> Result<Message, SendError> {
        let (subject, body, to) = self.redirected(&rendered.subject, &rendered.body, to.to_vec());
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(format!("<{id}@{}>", self.domain)));
        if let Some(root) = thread {
            let root = format!("<{root}@{}>", self.domain);
            builder = builder.in_reply_to(root.clone()).references(root);
        }
        if let Some(r) = &self.reply_to {
            builder = builder.reply_to(r.clone());
        }
        for address in &to {
            let mailbox = address
                .parse::<Mailbox>()
                .map_err(|source| SendError::BadAddress { address: address.clone(), source })?;
            builder = builder.to(mailbox);
        }
        // Plain text as written, and the same text as HTML for clients that show only that.
        builder
            .multipart(MultiPart::alternative_plain_html(body.clone(), to_html(&body)))
            .map_err(|source| SendError::Build { id: id.to_string(), source })
    }
}

impl Envelope {
    /// The report mail: its text (plain, and as HTML with the chart inline, `cid:grafico`) and
    /// the chart as an inline PNG, so that common mail clients show it in the message.
    pub fn report_message(
        &self,
        id: &str,
        to: &[Mailbox],
        subject: &str,
        text: &str,
        chart: Option<Vec<u8>>,
    ) -> Result<Message, SendError> {
        let (subject, text, to) =
            self.redirected(subject, text, to.iter().map(ToString::to_string).collect());
        let text = text.as_str();
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(format!("<{id}@{}>", self.domain)));
        for address in &to {
            let mailbox = address
                .parse::<Mailbox>()
                .map_err(|source| SendError::BadAddress { address: address.clone(), source })?;
            builder = builder.to(mailbox);
        }
        let build = |source| SendError::Build { id: id.to_string(), source };
        let Some(png) = chart else {
            return builder
                .multipart(MultiPart::alternative_plain_html(text.to_string(), to_html(text)))
                .map_err(build);
        };
        let html = format!(
            "{}<p><img src=\"cid:grafico\" alt=\"Solicitudes por día y % atendidas dentro del ANS\" width=\"720\" height=\"360\"></p>",
            to_html(text)
        );
        let image = Attachment::new_inline("grafico".to_string())
            .body(png, ContentType::parse("image/png").unwrap_or(ContentType::TEXT_PLAIN));
        let body = MultiPart::related()
            .multipart(MultiPart::alternative_plain_html(text.to_string(), html))
            .singlepart(image);
        builder.multipart(body).map_err(build)
    }
}

/// The text as HTML: escaped, a paragraph per block, line breaks kept.
pub fn to_html(text: &str) -> String {
    let escape =
        |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p>{}</p>", p.lines().map(escape).collect::<Vec<_>>().join("<br>\n")))
        .collect();
    format!(
        "<!DOCTYPE html>\n<html lang=\"es\"><head><meta charset=\"utf-8\"></head>\n<body style=\"font-family: sans-serif\">\n{}\n</body></html>\n",
        paragraphs.join("\n")
    )
}

/// Writes messages to a spool folder, one `.eml` file each. A file appears whole or not at all
/// (written under a hidden name, made durable, then renamed): a reader of the spool, or a
/// process killed in the middle, never leaves half a message.
pub struct FileSender {
    dir: PathBuf,
}

impl FileSender {
    pub fn new(dir: &Path) -> Result<FileSender, SendError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| SendError::Spool { path: dir.to_path_buf(), source: Box::new(e) })?;
        Ok(FileSender { dir: dir.to_path_buf() })
    }

    /// Whether the spool folder is there to write to.
    pub fn test(&self) -> Result<(), SendError> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| SendError::Spool { path: self.dir.clone(), source: Box::new(e) })
    }

    pub fn send(&self, message: &Message) -> Result<(), SendError> {
        let spool = |e: std::io::Error| SendError::Spool { path: self.dir.clone(), source: Box::new(e) };
        let mut name = [0u8; 16];
        getrandom::fill(&mut name).map_err(|e| spool(std::io::Error::other(e.to_string())))?;
        let name: String = name.iter().map(|b| format!("{b:02x}")).collect();
        let partial = self.dir.join(format!(".{name}.partial"));
        let result = (|| {
            let mut file = std::fs::File::create(&partial)?;
            std::io::Write::write_all(&mut file, &message.formatted())?;
            file.sync_all()?;
            std::fs::rename(&partial, self.dir.join(format!("{name}.eml")))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        result.map_err(spool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_and_keeps_paragraphs() {
        let html = to_html("Hola <Ana> & \"Luis\":\nlínea 2\n\nFin");
        assert!(html.contains("<p>Hola &lt;Ana&gt; &amp; &quot;Luis&quot;:<br>\nlínea 2</p>"), "{html}");
        assert!(html.contains("<p>Fin</p>"));
    }

    #[test]
    fn in_the_shadow_week_every_message_goes_to_the_administrators_saying_whom_it_was_for() {
        let mailbox = |s: &str| s.parse::<Mailbox>().unwrap();
        let mailboxes = Mailboxes {
            from: mailbox("Mesa <mesa@upme.gov.co>"),
            reply_to: None,
            service_desk: mailbox("mesa@upme.gov.co"),
            register: Some(mailbox("casos@upme.gov.co")),
            report: vec![mailbox("jefe@upme.gov.co")],
            administrators: vec![mailbox("infra@upme.gov.co"), mailbox("redes@upme.gov.co")],
        };
        let rendered = Rendered { subject: "Solicitud recibida".into(), body: "Cordial saludo.".into() };
        let to = ["ana@gmail.com".to_string(), "casos@upme.gov.co".to_string()];
        let text = |m: Message| String::from_utf8(m.formatted()).unwrap();

        let live = text(Envelope::new(&mailboxes, false).message("x.1.acuse", &to, &rendered).unwrap());
        assert!(
            live.contains("To: ana@gmail.com, casos@upme.gov.co")
                && live.contains("Subject: Solicitud recibida")
        );
        assert!(!live.contains("infra@") && !live.contains("SOMBRA"), "{live}");

        let shadow = Envelope::new(&mailboxes, true);
        let sent = text(shadow.message("x.1.acuse", &to, &rendered).unwrap());
        let head = sent.split("\r\n\r\n").next().unwrap();
        assert!(head.contains("To: infra@upme.gov.co, redes@upme.gov.co"), "{head}");
        assert!(!head.contains("ana@gmail.com") && !head.contains("casos@"), "{head}");
        assert!(head.contains("Subject: [MODO SOMBRA] Solicitud recibida"), "{head}");
        // The text as written (the message carries it quoted-printable).
        let (_, body, _) = shadow.redirected(&rendered.subject, &rendered.body, to.to_vec());
        assert!(body.starts_with("MODO SOMBRA: cuentas no escribió nada en el directorio."), "{body}");
        assert!(
            body.ends_with("habría ido a: ana@gmail.com, casos@upme.gov.co.\n\nCordial saludo."),
            "{body}"
        );
        let report = text(shadow.report_message("r.1", &mailboxes.report, "Reporte", "Texto", None).unwrap());
        let head = report.split("\r\n\r\n").next().unwrap();
        assert!(
            head.contains("To: infra@upme.gov.co, redes@upme.gov.co") && !head.contains("jefe@"),
            "{head}"
        );
    }
}
