//! The `async-openai` crate as a real client: non-stream, stream, embeddings (float and
//! base64), and an API error that must parse as an API error (not a deserialisation error).

mod common;

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestSystemMessageArgs, ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs,
};
use async_openai::Client;
use common::*;
use futures::StreamExt;

async fn client() -> Client<OpenAIConfig> {
    let url = serve(shared()).await;
    Client::with_config(OpenAIConfig::new().with_api_base(format!("{url}/v1")).with_api_key("unused"))
}

fn request(model: &str, stream: bool) -> async_openai::types::chat::CreateChatCompletionRequest {
    CreateChatCompletionRequestArgs::default()
        .model(model)
        .temperature(0.0)
        .max_completion_tokens(24u32)
        .stream(stream)
        .messages([
            ChatCompletionRequestSystemMessageArgs::default()
                .content("You are a helpful assistant.")
                .build()
                .unwrap()
                .into(),
            ChatCompletionRequestUserMessageArgs::default()
                .content("What is the capital of France?")
                .build()
                .unwrap()
                .into(),
        ])
        .build()
        .unwrap()
}

#[tokio::test]
async fn non_stream_chat() {
    let c = client().await;
    let r = c.chat().create(request(SMOL, false)).await.unwrap();
    let text = r.choices[0].message.content.clone().unwrap_or_default();
    assert!(text.contains("Paris"), "{text}");
    assert!(r.usage.unwrap().completion_tokens > 0);
}

#[tokio::test]
async fn stream_chat() {
    let c = client().await;
    let mut s = c.chat().create_stream(request(SMOL, true)).await.unwrap();
    let mut text = String::new();
    let mut finishes = 0;
    while let Some(chunk) = s.next().await {
        let chunk = chunk.unwrap();
        for ch in chunk.choices {
            text += ch.delta.content.as_deref().unwrap_or("");
            finishes += usize::from(ch.finish_reason.is_some());
        }
    }
    assert!(text.contains("Paris"), "{text}");
    assert_eq!(finishes, 1);
}

#[tokio::test]
async fn unknown_model_is_an_api_error() {
    let c = client().await;
    match c.chat().create(request("no-such-model", false)).await {
        Err(OpenAIError::ApiError(e)) => {
            assert_eq!(e.api_error.code.as_deref(), Some("model_not_found"));
            assert_eq!(e.api_error.param.as_deref(), Some("model"));
        }
        other => panic!("expected an ApiError, got {other:?}"),
    }
}

#[tokio::test]
async fn embeddings_float_and_base64() {
    use async_openai::types::embeddings::{CreateEmbeddingRequestArgs, EncodingFormat};
    let c = client().await;
    let req = |input: Vec<&str>| CreateEmbeddingRequestArgs::default().model(MINILM).input(input).build().unwrap();
    let r = c.embeddings().create(req(vec!["first sentence", "second one"])).await.unwrap();
    assert_eq!(r.data.len(), 2);
    assert_eq!((r.data[0].index, r.data[1].index), (0, 1));
    assert_eq!(r.data[0].embedding.len(), 384);
    assert_eq!(r.usage.prompt_tokens, r.usage.total_tokens);
    let mut b64 = req(vec!["first sentence"]);
    b64.encoding_format = Some(EncodingFormat::Base64);
    let b = c.embeddings().create_base64(b64).await.unwrap();
    let decoded: Vec<f32> = b.data[0].embedding.clone().into();
    // Alone vs in a batch of two the sums run in another order: equal to float rounding.
    let cos: f32 = decoded.iter().zip(&r.data[0].embedding).map(|(a, b)| a * b).sum();
    assert!(cos > 0.99999, "{cos}");
}

fn weather_request(stream: bool) -> async_openai::types::chat::CreateChatCompletionRequest {
    use async_openai::types::chat::{
        ChatCompletionTool, ChatCompletionToolChoiceOption, ChatCompletionTools, FunctionObject, ToolChoiceOptions,
    };
    let parameters = serde_json::json!({"type": "object", "properties": {"city": {"type": "string", "maxLength": 30}}, "required": ["city"], "additionalProperties": false});
    let tool = FunctionObject {
        name: "get_weather".into(),
        description: Some("Current weather in a city".into()),
        parameters: Some(parameters),
        strict: Some(true),
    };
    CreateChatCompletionRequestArgs::default()
        .model(SMOL)
        .temperature(0.0)
        .max_completion_tokens(60u32)
        .stream(stream)
        .tools(vec![ChatCompletionTools::Function(ChatCompletionTool { function: tool })])
        .tool_choice(ChatCompletionToolChoiceOption::Mode(ToolChoiceOptions::Required))
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content("What is the weather in Paris?")
            .build()
            .unwrap()
            .into()])
        .build()
        .unwrap()
}

#[tokio::test]
async fn tool_calls_whole_and_streamed_agree() {
    use async_openai::types::chat::{ChatCompletionMessageToolCalls, FinishReason};
    let c = client().await;
    let r = c.chat().create(weather_request(false)).await.unwrap();
    assert_eq!(r.choices[0].finish_reason, Some(FinishReason::ToolCalls));
    let calls = r.choices[0].message.tool_calls.clone().unwrap();
    let ChatCompletionMessageToolCalls::Function(call) = &calls[0] else { panic!("{calls:?}") };
    assert_eq!(call.function.name, "get_weather");
    let args: serde_json::Value = serde_json::from_str(&call.function.arguments).unwrap();
    assert!(args["city"].is_string() && args.as_object().unwrap().len() == 1, "{args}");

    let mut s = c.chat().create_stream(weather_request(true)).await.unwrap();
    let (mut name, mut arguments, mut finish) = (String::new(), String::new(), None);
    while let Some(chunk) = s.next().await {
        for ch in chunk.unwrap().choices {
            finish = ch.finish_reason.or(finish);
            for piece in ch.delta.tool_calls.unwrap_or_default() {
                let f = piece.function.unwrap();
                name += f.name.as_deref().unwrap_or("");
                arguments += f.arguments.as_deref().unwrap_or("");
            }
        }
    }
    assert_eq!(finish, Some(FinishReason::ToolCalls));
    assert_eq!((name.as_str(), arguments.as_str()), (call.function.name.as_str(), call.function.arguments.as_str()));
}
