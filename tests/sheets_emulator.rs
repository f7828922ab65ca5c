//! Self-tests of the Google Sheets API emulator (`tests/common/sheets.rs`), driven through the
//! real client stack the daemon uses: google-sheets4's `Sheets` hub and yup-oauth2's service
//! account flow over hyper-rustls (plain HTTP to 127.0.0.1).

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::sheets::Emulator;
use google_sheets4::api::ValueRange;
use google_sheets4::{Sheets, hyper_rustls, hyper_util, yup_oauth2};
use serde_json::{Value, json};

const READONLY: &str = "https://www.googleapis.com/auth/spreadsheets.readonly";
const ID: &str = "1FormResponsesSpreadsheetId_abcdefghijkl";
const TAB: &str = "Respuestas de formulario 1";

type Connector = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;
type Auth = yup_oauth2::authenticator::Authenticator<Connector>;

/// HTTPS or HTTP, as in production; no root is needed for 127.0.0.1 over HTTP.
fn connector() -> Connector {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build()
}

async fn authenticator(emu: &Emulator, dir: &Path, fixture: &str) -> Auth {
    let key = yup_oauth2::read_service_account_key(emu.key_file(dir, fixture)).await.unwrap();
    let client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector());
    yup_oauth2::ServiceAccountAuthenticator::with_client(
        key,
        yup_oauth2::CustomHyperClientBuilder::from(client),
    )
    .build()
    .await
    .unwrap()
}

async fn hub(emu: &Emulator, dir: &Path) -> Sheets<Connector> {
    let auth = authenticator(emu, dir, "service-account").await;
    let client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector());
    let mut hub = Sheets::new(client, auth);
    hub.base_url(emu.base_url());
    hub.root_url(emu.base_url());
    hub
}

/// What a caller must do to the range before google-sheets4 puts it in the path: percent-encode
/// all but unreserved characters, `!` and `:`.
fn encode_range(range: &str) -> String {
    range
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'!' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn get(hub: &Sheets<Connector>, range: &str) -> Result<ValueRange, google_sheets4::Error> {
    hub.spreadsheets()
        .values_get(ID, &encode_range(range))
        .value_render_option("UNFORMATTED_VALUE")
        .date_time_render_option("FORMATTED_STRING")
        .add_scope(READONLY)
        .doit()
        .await
        .map(|(_, v)| v)
}

/// The JSON error body of a failed call.
fn error_body(result: Result<ValueRange, google_sheets4::Error>) -> Value {
    match result {
        Err(google_sheets4::Error::BadRequest(v)) => v,
        other => panic!("expected Google's JSON error, got {other:?}"),
    }
}

fn form_rows() -> Vec<Vec<Value>> {
    vec![
        vec![json!("Marca temporal"), json!("Correo"), json!("Nombres"), json!("Documento")],
        vec![
            Emulator::date_time("27/11/2026 7:05:03"),
            json!("ana@example.org"),
            json!("Ana"),
            json!(1_000_000_001),
        ],
        vec![Emulator::date_time("27/11/2026 7:06:10"), json!("luis@example.org"), json!(""), Value::Null],
        vec![],
        vec![Emulator::date_time("27/11/2026 8:00:00"), json!(""), json!("José"), json!(2.5), json!(true)],
    ]
}

/// The emulator with `form_rows()` in its first tab and a hub authenticated against it (the
/// folder holds the service-account key it read).
async fn form_hub() -> (Emulator, tempfile::TempDir, Sheets<Connector>) {
    let emu = Emulator::start(ID, TAB, "America/Bogota");
    emu.set_rows(form_rows());
    let dir = tempfile::tempdir().unwrap();
    let hub = hub(&emu, dir.path()).await;
    (emu, dir, hub)
}

#[tokio::test]
async fn token_is_issued_for_the_right_key_and_refused_for_a_wrong_one() {
    let emu = Emulator::start(ID, TAB, "America/Bogota");
    let dir = tempfile::tempdir().unwrap();

    let good = authenticator(&emu, dir.path(), "service-account").await;
    let token = good.token(&[READONLY]).await.unwrap();
    assert!(token.token().unwrap().starts_with("ya29."), "{token:?}");

    // The readonly scope is required.
    let err = good.token(&["https://www.googleapis.com/auth/drive.readonly"]).await.unwrap_err();
    assert!(err.to_string().contains("invalid_scope"), "{err}");

    let wrong = authenticator(&emu, dir.path(), "wrong-key").await;
    match wrong.token(&[READONLY]).await.unwrap_err() {
        yup_oauth2::Error::AuthError(e) => {
            assert_eq!(e.error, yup_oauth2::error::AuthErrorCode::InvalidGrant);
            assert_eq!(e.error_description.as_deref(), Some("Invalid JWT Signature."));
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }
    assert_eq!(emu.token_requests(), 3);
    assert_eq!(emu.sheets_requests(), 0);
}

#[tokio::test]
async fn values_get_trims_empty_cells_and_counts() {
    let (emu, _dir, hub) = form_hub().await;

    let got = get(&hub, &format!("'{TAB}'!A2:D")).await.unwrap();
    assert_eq!(got.range.as_deref(), Some("'Respuestas de formulario 1'!A2:D1000"));
    assert_eq!(got.major_dimension.as_deref(), Some("ROWS"));
    assert_eq!(
        got.values.unwrap(),
        vec![
            vec![json!("27/11/2026 7:05:03"), json!("ana@example.org"), json!("Ana"), json!(1_000_000_001)],
            vec![json!("27/11/2026 7:06:10"), json!("luis@example.org")],
            vec![],
            vec![json!("27/11/2026 8:00:00"), json!(""), json!("José"), json!(2.5)],
        ]
    );
    assert_eq!((emu.values_requests(), emu.cells_served()), (1, 9));

    // The timestamp as a serial number, and every value as the sheet shows it.
    let (_, serial) = hub
        .spreadsheets()
        .values_get(ID, &encode_range(&format!("'{TAB}'!A2")))
        .value_render_option("UNFORMATTED_VALUE")
        .add_scope(READONLY)
        .doit()
        .await
        .unwrap();
    assert_eq!(serial.values.unwrap(), [[json!(46353.29517361111)]]);
    let (_, shown) = hub
        .spreadsheets()
        .values_get(ID, &encode_range(&format!("'{TAB}'!5:5")))
        .add_scope(READONLY)
        .doit()
        .await
        .unwrap();
    assert_eq!(
        shown.values.unwrap(),
        [[json!("27/11/2026 8:00:00"), json!(""), json!("José"), json!("2.5"), json!("TRUE")]]
    );

    // Below the data: no `values` at all. The grid is 1000 rows by 5 columns.
    let empty = get(&hub, &format!("'{TAB}'!A7:E9")).await.unwrap();
    assert_eq!((empty.range.as_deref(), empty.values), (Some("'Respuestas de formulario 1'!A7:E9"), None));

    // The metadata: time zone, locale and grid, with a field mask.
    let (_, meta) = hub
        .spreadsheets()
        .get(ID)
        .param("fields", "properties(timeZone,locale),sheets.properties(title,gridProperties)")
        .add_scope(READONLY)
        .doit()
        .await
        .unwrap();
    let props = meta.properties.unwrap();
    assert_eq!(
        (props.time_zone.as_deref(), props.locale.as_deref()),
        (Some("America/Bogota"), Some("es_419"))
    );
    assert_eq!(props.title, None, "masked out");
    let sheet = meta.sheets.unwrap()[0].properties.clone().unwrap();
    let grid = sheet.grid_properties.unwrap();
    assert_eq!((sheet.title.as_deref(), grid.row_count, grid.column_count), (Some(TAB), Some(1000), Some(5)));

    assert_eq!((emu.sheets_requests(), emu.values_requests(), emu.token_requests()), (5, 4, 1));
    let log = emu.log();
    assert_eq!(log[0].0, "GET");
    assert!(
        log[0].1.starts_with(&format!(
            "/v4/spreadsheets/{ID}/values/%27Respuestas%20de%20formulario%201%27!A2:D?"
        ))
    );
    assert!(log.iter().all(|(_, _, status)| *status == 200), "{log:?}");
}

#[tokio::test]
async fn bad_ranges_are_400s() {
    let (emu, _dir, hub) = form_hub().await;

    let body = error_body(get(&hub, &format!("'{TAB}'!A1001:E")).await);
    assert_eq!(body["error"]["code"], 400);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        body["error"]["message"],
        "Range ('Respuestas de formulario 1'!A1001:E) exceeds grid limits. Max rows: 1000, max columns: 5"
    );

    let body = error_body(get(&hub, "Hoja 1!A1:B2").await);
    assert_eq!(body["error"]["message"], "Unable to parse range: Hoja 1!A1:B2");
    assert_eq!(emu.cells_served(), 0);
}

#[tokio::test]
async fn batch_get_answers_in_request_order() {
    let (emu, _dir, hub) = form_hub().await;

    // The query string is the client's to encode: plain ranges here.
    let (_, got) = hub
        .spreadsheets()
        .values_batch_get(ID)
        .add_ranges(&format!("'{TAB}'!5:5"))
        .add_ranges(&format!("'{TAB}'!A1"))
        .add_ranges(&format!("'{TAB}'!B:B"))
        .value_render_option("UNFORMATTED_VALUE")
        .date_time_render_option("FORMATTED_STRING")
        .add_scope(READONLY)
        .doit()
        .await
        .unwrap();
    let ranges: Vec<(String, Option<Vec<Vec<Value>>>)> =
        got.value_ranges.unwrap().into_iter().map(|v| (v.range.unwrap(), v.values)).collect();
    assert_eq!(
        ranges,
        vec![
            (
                format!("'{TAB}'!A5:E5"),
                Some(vec![vec![
                    json!("27/11/2026 8:00:00"),
                    json!(""),
                    json!("José"),
                    json!(2.5),
                    json!(true)
                ]])
            ),
            (format!("'{TAB}'!A1"), Some(vec![vec![json!("Marca temporal")]])),
            (
                format!("'{TAB}'!B1:B1000"),
                Some(vec![
                    vec![json!("Correo")],
                    vec![json!("ana@example.org")],
                    vec![json!("luis@example.org")]
                ])
            ),
        ]
    );
    assert_eq!((emu.values_requests(), emu.cells_served()), (1, 8));
}

#[tokio::test]
async fn revoked_tokens_and_injected_faults() {
    let (emu, _dir, hub) = form_hub().await;
    let range = format!("'{TAB}'!A1:D2");

    emu.fail_next(429, 2);
    let body = error_body(get(&hub, &range).await);
    assert_eq!(
        (body["error"]["code"].clone(), body["error"]["status"].clone()),
        (json!(429), json!("RESOURCE_EXHAUSTED"))
    );
    assert_eq!(error_body(get(&hub, &range).await)["error"]["code"], 429);
    assert!(get(&hub, &range).await.unwrap().values.is_some());

    // The client keeps its cached token, which the emulator no longer takes.
    emu.expire_tokens();
    let body = error_body(get(&hub, &range).await);
    assert_eq!(
        (body["error"]["code"].clone(), body["error"]["status"].clone()),
        (json!(401), json!("UNAUTHENTICATED"))
    );

    let statuses: Vec<u16> = emu.log().into_iter().map(|(_, _, s)| s).collect();
    assert_eq!(statuses, [429, 429, 200, 401]);
    assert_eq!((emu.sheets_requests(), emu.token_requests(), emu.cells_served()), (4, 1, 8));

    emu.reset_counters();
    assert_eq!((emu.sheets_requests(), emu.values_requests(), emu.log().len()), (0, 0, 0));
}

#[tokio::test]
async fn a_second_tab_is_read_by_its_name() {
    const MATRIZ: &str = "Matriz de autorizadores";
    let (emu, _dir, hub) = form_hub().await;
    emu.add_tab(MATRIZ, vec![vec![json!("Área"), json!("Autorizador")], vec![json!("Ventas"), json!("ana")]]);

    let got = get(&hub, &format!("'{MATRIZ}'!A:B")).await.unwrap();
    assert_eq!(got.range.as_deref(), Some("'Matriz de autorizadores'!A1:B1000"));
    assert_eq!(got.values.unwrap(), [[json!("Área"), json!("Autorizador")], [json!("Ventas"), json!("ana")]]);
    // The first tab still answers, with and without its name; the second has its own grid.
    assert_eq!(get(&hub, &format!("'{TAB}'!C2")).await.unwrap().values.unwrap(), [[json!("Ana")]]);
    assert_eq!(get(&hub, "A1").await.unwrap().values.unwrap(), [[json!("Marca temporal")]]);
    let body = error_body(get(&hub, &format!("'{MATRIZ}'!C1")).await);
    assert_eq!(
        body["error"]["message"],
        "Range ('Matriz de autorizadores'!C1) exceeds grid limits. Max rows: 1000, max columns: 2"
    );
    assert_eq!((emu.values_requests(), emu.cells_served()), (4, 6));

    let (_, meta) = hub
        .spreadsheets()
        .get(ID)
        .param("fields", "sheets.properties(sheetId,title,index,gridProperties)")
        .add_scope(READONLY)
        .doit()
        .await
        .unwrap();
    let tabs: Vec<_> = meta
        .sheets
        .unwrap()
        .into_iter()
        .map(|s| {
            let p = s.properties.unwrap();
            let g = p.grid_properties.unwrap();
            (p.sheet_id, p.title.unwrap(), p.index, g.column_count, p.sheet_type)
        })
        .collect();
    assert_eq!(
        tabs,
        [
            (Some(0), TAB.to_string(), Some(0), Some(5), None),
            (Some(1), MATRIZ.to_string(), Some(1), Some(2), None)
        ]
    );
}
