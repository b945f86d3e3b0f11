//! The upload path's multipart reading on arbitrary bodies: files and fields, or a 4xx,
//! never a panic; no file past the limit is kept.
#![no_main]

use axum::extract::{FromRequest, Multipart, Request};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    // Reading a form keeps a body-read deadline, which needs the timer.
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    rt.block_on(async {
        let req = Request::builder()
            .method("POST")
            .header("content-type", "multipart/form-data; boundary=XB")
            .body(axum::body::Body::from(data.to_vec()))
            .expect("a request");
        let Ok(form) = Multipart::from_request(req, &()).await else { return };
        if let Ok(read) = hearth_server::retrieval::routes::read_form(LIMIT, form).await {
            assert!(read.files.iter().map(|f| f.2.len()).sum::<usize>() <= LIMIT);
        }
    });
});
