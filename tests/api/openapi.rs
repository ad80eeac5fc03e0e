//! `openapi.yaml` is generated from the code and committed; the server serves the same document.

use utoipa::OpenApi;

use crate::helpers::spawn_app;

const REGENERATE: &str = "UPDATE_OPENAPI=1 cargo test openapi";

#[test]
fn the_committed_openapi_yaml_is_what_the_code_generates() {
    let generated = api::openapi::yaml().unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi.yaml differs from what the code generates; regenerate it with `{REGENERATE}`"
    );
}

#[tokio::test]
async fn the_server_serves_the_same_document_as_openapi_json() {
    let app = spawn_app().await;
    let served = app.get("/openapi.json", None).await.expect(200);
    let generated = serde_json::to_value(api::openapi::ApiDoc::openapi()).unwrap();
    assert_eq!(served, generated);
    assert!(served["openapi"].as_str().unwrap().starts_with("3.1"));
}

#[tokio::test]
async fn interactive_docs_are_served_from_the_binary() {
    let app = spawn_app().await;
    for path in ["/docs", "/docs/"] {
        let page = app.get(path, None).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            page.header("content-type")
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        assert!(page.text.contains("swagger-ui"), "{path}");
        assert!(
            !page.text.contains("https://"),
            "{path} loads something from the network"
        );
    }
    for asset in [
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-ui.css",
        "/docs/swagger-ui-standalone-preset.js",
    ] {
        let response = app.get(asset, None).await;
        assert_eq!(response.status, 200, "{asset}");
        assert!(response.text.len() > 1000, "{asset} is empty");
    }
}
