//! Small real documents built in memory, for tests and examples: a PDF with a text layer
//! (one string per page) and a DOCX (styled paragraphs); and a fresh database on the test
//! PostgreSQL server. Nothing here is used at run time.

use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Document, Object, Stream};
use std::io::Write;

/// A PDF whose page `i` shows `pages[i]` (Helvetica, one line per `\n`).
pub fn pdf(pages: &[&str]) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let resources_id = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let mut kids: Vec<Object> = Vec::new();
    for text in pages {
        let mut ops = vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 11.into()]),
            Operation::new("TL", vec![14.into()]),
            Operation::new("Td", vec![50.into(), 780.into()]),
        ];
        for line in text.lines() {
            ops.push(Operation::new("Tj", vec![Object::string_literal(line)]));
            ops.push(Operation::new("T*", vec![]));
        }
        ops.push(Operation::new("ET", vec![]));
        let bytes = Content { operations: ops }.encode().unwrap_or_default();
        let content_id = doc.add_object(Stream::new(dictionary! {}, bytes));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
        });
        kids.push(page_id.into());
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => count, "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    let _ = doc.save_to(&mut out);
    out
}

/// A DOCX of `(style, text)` paragraphs (`""` for normal text, `"Heading1"` for a heading)
/// with `title` in its core properties.
pub fn docx(title: &str, paragraphs: &[(&str, &str)]) -> Vec<u8> {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let body: String = paragraphs
        .iter()
        .map(|(style, text)| {
            let ppr =
                if style.is_empty() { String::new() } else { format!(r#"<w:pPr><w:pStyle w:val="{style}"/></w:pPr>"#) };
            format!("<w:p>{ppr}<w:r><w:t xml:space=\"preserve\">{}</w:t></w:r></w:p>", esc(text))
        })
        .collect();
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
    );
    let core = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{}</dc:title></cp:coreProperties>"#,
        esc(title)
    );
    let types = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;
    zip_of(&[
        ("[Content_Types].xml", types.as_bytes()),
        ("word/document.xml", document.as_bytes()),
        ("docProps/core.xml", core.as_bytes()),
    ])
}

/// A zip archive (deflated) of `(name, bytes)` members.
pub fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        let _ = w.start_file(*name, opts);
        let _ = w.write_all(bytes);
    }
    w.finish().map(std::io::Cursor::into_inner).unwrap_or_default()
}

/// A fresh, empty database `hearth_{tag}_{pid}` on the PostgreSQL server at
/// `HEARTH_TEST_POSTGRES_URL` (a URL ending in `/postgres`, as `scripts/postgres start` prints;
/// `scripts/test` sets it), as a URL. None when the variable is unset, which CI never allows.
///
/// # Panics
/// Unset under CI, or when the server cannot be reached: a test environment failure.
pub fn postgres_database(tag: &str) -> Option<String> {
    let Ok(base) = std::env::var("HEARTH_TEST_POSTGRES_URL") else {
        assert!(std::env::var_os("CI").is_none(), "CI runs the PostgreSQL tests: set HEARTH_TEST_POSTGRES_URL");
        eprintln!("PostgreSQL tests not run: HEARTH_TEST_POSTGRES_URL is unset (scripts/test starts a server)");
        return None;
    };
    let db = format!("hearth_{tag}_{}", std::process::id());
    let mut c = postgres::Client::connect(&base, postgres::NoTls).unwrap_or_else(|e| panic!("{base}: {e}"));
    c.batch_execute(&format!("DROP DATABASE IF EXISTS {db}")).unwrap_or_else(|e| panic!("drop {db}: {e}"));
    c.batch_execute(&format!("CREATE DATABASE {db}")).unwrap_or_else(|e| panic!("create {db}: {e}"));
    let server = base.rsplit_once('/').map_or(base.as_str(), |(s, _)| s);
    Some(format!("{server}/{db}"))
}
