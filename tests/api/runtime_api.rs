//! The BUFFERED invoke mode through the real Lambda runtime client, without an emulator in the
//! way: the `imgfn` binary runs as a Lambda (`AWS_LAMBDA_RUNTIME_API`) against a minimal
//! Runtime API served here (the endpoints a function calls: `next`, `response`, `error`). It
//! hands the function Function URL events and keeps the JSON the function posts, which is
//! exactly what AWS turns into the HTTP answer: `statusCode`, `headers`, `body`,
//! `isBase64Encoded`. (`cargo lambda watch` loses some BUFFERED responses; see claims.rs.)

use crate::claims::jpeg_of_len;
use crate::support::{S3Env, TestApp};
use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, Notify};

/// BUFFERED's default response budget (src/lambda.rs, README).
const BUFFERED_RESPONSE_BUDGET: u64 = 4_400_000;

#[derive(Default)]
struct Peer {
    events: Mutex<VecDeque<(String, Value)>>,
    arrived: Notify,
    waiting: Mutex<HashMap<String, oneshot::Sender<Result<Value, String>>>>,
}

impl Peer {
    async fn serve(self: Arc<Self>, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        let reply = |status: u16, body: Bytes| {
            hyper::Response::builder()
                .status(status)
                .body(Full::new(body))
                .expect("response")
        };
        if path == "/2018-06-01/runtime/invocation/next" {
            let (id, event) = loop {
                let notified = self.arrived.notified();
                if let Some(next) = self.events.lock().unwrap().pop_front() {
                    break next;
                }
                notified.await;
            };
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 60_000;
            return hyper::Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .header("lambda-runtime-aws-request-id", &id)
                .header("lambda-runtime-deadline-ms", deadline.to_string())
                .header(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:imgfn",
                )
                .header(
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000",
                )
                .body(Full::new(Bytes::from(event.to_string())))
                .expect("event");
        }
        let body = req.into_body().collect().await.map(|b| b.to_bytes());
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        if let ["2018-06-01", "runtime", "invocation", id, outcome] = parts[..] {
            let result = match (outcome, body) {
                ("response", Ok(b)) => serde_json::from_slice(&b).map_err(|e| e.to_string()),
                (_, Ok(b)) => Err(format!("{outcome}: {}", String::from_utf8_lossy(&b))),
                (_, Err(e)) => Err(e.to_string()),
            };
            if let Some(tx) = self.waiting.lock().unwrap().remove(id) {
                let _ = tx.send(result);
            }
            return reply(202, Bytes::from_static(b"{}"));
        }
        // init/error and anything else: the function failed to start.
        eprintln!("runtime API peer: {path}");
        reply(202, Bytes::from_static(b"{}"))
    }
}

struct Function {
    peer: Arc<Peer>,
    child: std::process::Child,
    next_id: std::sync::atomic::AtomicU32,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Function {
    async fn start(s3: &S3Env, env: &[(&str, &str)]) -> Function {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = Arc::new(Peer::default());
        let serving = peer.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let peer = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let peer = peer.clone();
                        async move { Ok::<_, std::convert::Infallible>(peer.serve(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let mut cmd = s3.lambda_function(&addr.to_string(), env);
        cmd.stdout(std::process::Stdio::null());
        Function {
            peer,
            child: cmd.spawn().expect("the imgfn binary"),
            next_id: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// One Function URL invocation; the JSON the function posted back.
    async fn invoke(&self, path: &str, query: &str) -> Value {
        let id = format!(
            "req-{}",
            self.next_id
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let event = json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": query,
            "headers": {
                "host": "id.lambda-url.us-east-1.on.aws",
                "accept": "image/avif,image/webp,*/*",
                "x-forwarded-proto": "https",
                "user-agent": "test"
            },
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "id",
                "domainName": "id.lambda-url.us-east-1.on.aws",
                "domainPrefix": "id",
                "http": {
                    "method": "GET",
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": "test"
                },
                "requestId": id,
                "routeKey": "$default",
                "stage": "$default",
                "time": "30/Nov/2026:00:00:00 +0000",
                "timeEpoch": 1796083200000u64
            },
            "isBase64Encoded": false
        });
        let (tx, rx) = oneshot::channel();
        self.peer.waiting.lock().unwrap().insert(id.clone(), tx);
        self.peer.events.lock().unwrap().push_back((id, event));
        self.peer.arrived.notify_one();
        tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .unwrap_or_else(|_| panic!("{path}?{query}: the function posted nothing in 60 s"))
            .expect("peer")
            .unwrap_or_else(|e| panic!("{path}?{query}: the function reported an error: {e}"))
    }
}

/// The bytes AWS would send the caller for a BUFFERED response.
fn body_bytes(resp: &Value) -> Vec<u8> {
    let body = resp["body"].as_str().unwrap_or_default();
    if resp["isBase64Encoded"] == true {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("base64 body")
    } else {
        body.as_bytes().to_vec()
    }
}

fn header<'a>(resp: &'a Value, name: &str) -> Option<&'a str> {
    resp["headers"][name].as_str()
}

#[tokio::test]
async fn buffered_responses_carry_binary_bodies_as_base64_within_the_default_budget() {
    crate::needs!(Garage);
    let s3 = S3Env::new("runtime-api").await;
    for f in ["small.jpg", "alpha-small.png"] {
        s3.put_fixture(f).await;
    }
    let (at, over) = (
        jpeg_of_len(BUFFERED_RESPONSE_BUDGET),
        jpeg_of_len(BUFFERED_RESPONSE_BUDGET + 1),
    );
    s3.put("at-budget.jpg", &at).await;
    s3.put("over-budget.jpg", &over).await;
    // IMGFN_MAX_RESPONSE_BYTES unset: the budget is BUFFERED's default.
    let function = Function::start(&s3, &[("IMGFN_INVOKE_MODE", "buffered")]).await;
    let local = TestApp::spawn_with(s3.config()).await;

    for (path, query, content_type) in [
        ("/small.jpg", "w=120&fmt=jpeg", "image/jpeg"),
        ("/alpha-small.png", "w=120&fmt=png", "image/png"),
        ("/small.jpg", "w=120&fmt=webp", "image/webp"),
        ("/small.jpg", "w=120&fmt=avif", "image/avif"),
        ("/small.jpg", "", "image/jpeg"),
    ] {
        let resp = function.invoke(path, query).await;
        assert_eq!(resp["statusCode"], 200, "{path}?{query}: {resp}");
        assert_eq!(
            resp["isBase64Encoded"], true,
            "{path}?{query}: binary is base64"
        );
        assert_eq!(header(&resp, "content-type"), Some(content_type));
        let expected = local.get(&format!("{path}?{query}")).await.body;
        assert!(
            body_bytes(&resp) == expected,
            "{path}?{query}: the BUFFERED body differs from the local server's"
        );
    }
    // Text stays text: a JSON error keeps its status and readable body.
    let missing = function.invoke("/nope.jpg", "w=10").await;
    assert_eq!(missing["statusCode"], 404);
    assert_eq!(missing["isBase64Encoded"], false);
    let error: Value = serde_json::from_slice(&body_bytes(&missing)).unwrap();
    assert_eq!(error["error"]["code"], "not_found");

    // At the budget the body is sent; one byte over, a redirect to a presigned GET.
    let sent = function.invoke("/at-budget.jpg", "").await;
    assert_eq!(sent["statusCode"], 200);
    assert!(
        body_bytes(&sent) == at,
        "the 4.4 MB original, byte for byte"
    );
    let redirected = function.invoke("/over-budget.jpg", "").await;
    assert_eq!(redirected["statusCode"], 302, "{redirected}");
    let location = header(&redirected, "location").expect("a Location");
    let fetched = reqwest::get(location).await.unwrap().bytes().await.unwrap();
    assert!(fetched == over, "the presigned GET downloads the original");
}
