//! Chat templates: the GGUF's Jinja `tokenizer.chat_template`, rendered with minijinja, or a
//! built-in template for models that ship none.

use crate::error::{EngineError, TemplateError};
use crate::model::TemplateSource;
use crate::tools::ToolFamily;
use minijinja::{Environment, ErrorKind, Value};
use serde::Serialize;

/// One message as the template sees it.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct TemplateMessage {
    /// `system`, `user`, `assistant`, ...
    pub role: String,
    /// The message text.
    pub content: String,
    /// An assistant's tool calls, as templates read them: `{"id", "type": "function",
    /// "function": {"name", "arguments"}}` with `arguments` an object where it parses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<serde_json::Value>>,
    /// A tool result's call id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// A tool result's tool name, or a participant's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

const GEMMA: &str = r#"{%- set sys = namespace(text='') -%}
{%- for m in messages -%}
{%- if m.role == 'system' or m.role == 'developer' -%}
{%- set sys.text = sys.text + m.content + '\n\n' -%}
{%- elif m.role == 'assistant' -%}
{{ '<start_of_turn>model\n' + (m.content | trim) + '<end_of_turn>\n' }}
{%- else -%}
{{ '<start_of_turn>user\n' + ((sys.text + m.content) | trim) + '<end_of_turn>\n' }}
{%- set sys.text = '' -%}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"#;

const CHATML: &str = r#"{%- for m in messages -%}
{{ '<|im_start|>' + m.role + '\n' + m.content + '<|im_end|>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"#;

/// The built-in template name for an architecture whose GGUF has no template.
pub fn builtin_for_arch(arch: &str) -> &'static str {
    if arch.starts_with("gemma") {
        "gemma"
    } else {
        "chatml"
    }
}

/// The Jinja source of a built-in template.
pub fn builtin_source(name: &str) -> &'static str {
    match name {
        "gemma" => GEMMA,
        _ => CHATML,
    }
}

/// A compiled chat template.
#[derive(Debug)]
pub struct ChatTemplate {
    /// The environment holds the one compiled template, named `chat`.
    env: Environment<'static>,
    /// How the template writes tool calls.
    family: ToolFamily,
}

fn raise_exception(msg: String) -> Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
}

fn strftime_now(fmt: String) -> String {
    // Templates use this for "today's date"; a fixed UTC rendering keeps it dependency-free.
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let (y, m, d) = civil_from_days(days);
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    fmt.replace("%Y", &y.to_string())
        .replace("%m", &format!("{m:02}"))
        .replace("%d", &format!("{d:02}"))
        .replace("%B", MONTHS[(m - 1) as usize])
        .replace("%b", &MONTHS[(m - 1) as usize][..3])
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar (Howard
/// Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl ChatTemplate {
    /// Compiles a template. A GGUF template that does not compile falls back to the built-in
    /// one for `arch`, with a warning, so a model with a broken template still chats.
    pub fn new(source: &TemplateSource, arch: &str) -> Self {
        match source {
            TemplateSource::Gguf(src) => match Self::compile(src.clone()) {
                Ok(t) => Self { family: ToolFamily::detect(src), ..t },
                Err(e) => {
                    tracing::warn!(error = %e, "GGUF chat template does not compile; using a built-in one");
                    Self::builtin(builtin_for_arch(arch))
                }
            },
            TemplateSource::Builtin(name) => Self::builtin(name),
        }
    }

    fn builtin(name: &str) -> Self {
        // The built-in templates are constants covered by unit tests.
        Self::compile(builtin_source(name).to_string())
            .unwrap_or_else(|_| Self { env: Environment::new(), family: ToolFamily::Generic })
    }

    fn compile(src: String) -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        env.set_fuel(Some(crate::limits::TEMPLATE_FUEL));
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_template_owned("chat", src)?;
        Ok(Self { env, family: ToolFamily::Generic })
    }

    /// How this template writes tool calls ([`ToolFamily::Generic`] when it knows no tools).
    pub fn family(&self) -> ToolFamily {
        self.family
    }

    /// Renders the conversation into a prompt; `tools` (OpenAI's tool objects) are given to
    /// templates that know them.
    ///
    /// # Errors
    /// [`EngineError::TemplateRejected`] when the template raises an exception (e.g. roles
    /// that do not alternate) or fails to render.
    pub fn render(
        &self,
        messages: &[TemplateMessage],
        tools: Option<&[serde_json::Value]>,
        add_generation_prompt: bool,
        bos: &str,
        eos: &str,
    ) -> Result<String, EngineError> {
        let tmpl = self.env.get_template("chat").map_err(|e| rejected(&e))?;
        let ctx = minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => bos,
            eos_token => eos,
            tools => tools.map_or(Value::UNDEFINED, Value::from_serialize),
        };
        tmpl.render(ctx).map_err(|e| rejected(&e))
    }
}

/// The template's own `raise_exception` message for the client; any other failure is logged
/// and named by its kind.
fn rejected(e: &minijinja::Error) -> EngineError {
    EngineError::TemplateRejected(match e.kind() {
        ErrorKind::InvalidOperation => {
            TemplateError::Raised(e.detail().unwrap_or("the chat template rejected the messages").to_string())
        }
        ErrorKind::OutOfFuel => {
            tracing::warn!("the chat template ran out of steps");
            TemplateError::OutOfFuel
        }
        kind => {
            tracing::warn!(error = %e, "the chat template failed to render");
            TemplateError::Render(kind)
        }
    })
}

/// The strings of a message that came from the client: its name, text and tool call id, and
/// its tool calls' ids, names and arguments.
pub fn client_text(m: &TemplateMessage) -> impl Iterator<Item = String> + '_ {
    let calls = m.tool_calls.iter().flatten().flat_map(|c| {
        ["/id", "/function/name", "/function/arguments"].into_iter().filter_map(move |at| match c.pointer(at) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(v) => serde_json::to_string(v).ok(),
            None => None,
        })
    });
    m.name.iter().cloned().chain(std::iter::once(m.content.clone())).chain(m.tool_call_id.iter().cloned()).chain(calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(pairs: &[(&str, &str)]) -> Vec<TemplateMessage> {
        pairs
            .iter()
            .map(|(r, c)| TemplateMessage { role: r.to_string(), content: c.to_string(), ..Default::default() })
            .collect()
    }

    #[test]
    fn chatml_builtin_renders_turns_and_generation_prompt() {
        let t = ChatTemplate::new(&TemplateSource::Builtin("chatml"), "llama");
        let out = t.render(&msgs(&[("system", "S"), ("user", "hi")]), None, true, "", "").unwrap();
        assert_eq!(out, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    }

    #[test]
    fn gemma_builtin_folds_system_into_first_user_turn() {
        let t = ChatTemplate::new(&TemplateSource::Builtin("gemma"), "gemma3");
        let out = t
            .render(
                &msgs(&[("system", "Be brief."), ("user", "hi"), ("assistant", "hello"), ("user", "bye")]),
                None,
                true,
                "<bos>",
                "<eos>",
            )
            .unwrap();
        assert_eq!(
            out,
            "<start_of_turn>user\nBe brief.\n\nhi<end_of_turn>\n<start_of_turn>model\nhello<end_of_turn>\n<start_of_turn>user\nbye<end_of_turn>\n<start_of_turn>model\n"
        );
    }

    #[test]
    fn gguf_template_with_pycompat_methods_and_bos() {
        let src = "{{ bos_token }}{% for m in messages %}{{ m.role.upper() }}: {{ m.content.strip() }}\n{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}";
        let t = ChatTemplate::new(&TemplateSource::Gguf(src.into()), "llama");
        assert_eq!(t.render(&msgs(&[("user", " x ")]), None, true, "<s>", "").unwrap(), "<s>USER: x\nASSISTANT:");
    }

    #[test]
    fn raise_exception_becomes_template_rejected_with_its_message() {
        let src = "{% if messages[0].role != 'user' %}{{ raise_exception('Conversation must start with user') }}{% endif %}ok";
        let t = ChatTemplate::new(&TemplateSource::Gguf(src.into()), "llama");
        match t.render(&msgs(&[("assistant", "x")]), None, true, "", "") {
            Err(EngineError::TemplateRejected(TemplateError::Raised(m))) => {
                assert!(m.contains("Conversation must start with user"), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }

    // A GGUF's template is code from the internet: one that loops (almost) for ever ran on a
    // runtime thread with no limit (issue 28).
    #[test]
    fn a_template_that_runs_too_long_is_refused_by_its_fuel() {
        let src = "{% for i in range(10000) %}{% for j in range(10000) %}{{ '' }}{% endfor %}{% endfor %}";
        let t = ChatTemplate::new(&TemplateSource::Gguf(src.into()), "llama");
        let started = std::time::Instant::now();
        match t.render(&msgs(&[("user", "x")]), None, true, "", "") {
            Err(EngineError::TemplateRejected(TemplateError::OutOfFuel)) => {}
            other => panic!("{other:?}"),
        }
        eprintln!("fuel ran out after {:?}", started.elapsed());
        let long: Vec<_> =
            (0..2000).map(|i| if i % 2 == 0 { ("user", "a question") } else { ("assistant", "an answer") }).collect();
        let qwen_like = "{% for m in messages %}{% if loop.first and m.role != 'system' %}<|im_start|>system\nYou are helpful.<|im_end|>\n{% endif %}<|im_start|>{{ m.role }}\n{{ m.content | trim }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
        let t = ChatTemplate::new(&TemplateSource::Gguf(qwen_like.into()), "qwen2");
        assert!(t.render(&msgs(&long), None, true, "", "").is_ok(), "a 2000-message conversation fits the budget");
    }

    #[test]
    fn broken_gguf_template_falls_back_to_builtin() {
        let t = ChatTemplate::new(&TemplateSource::Gguf("{% for %}".into()), "gemma3");
        assert!(t.render(&msgs(&[("user", "q")]), None, true, "", "").unwrap().starts_with("<start_of_turn>user"));
    }

    #[test]
    fn tools_and_tool_calls_reach_a_template_that_knows_them() {
        let src = "{% if tools %}<tools>{% for t in tools %}{{ t.function.name }};{% endfor %}</tools>{% endif %}\
                   {% for m in messages %}{% if m.tool_calls %}{% for c in m.tool_calls %}<tool_call>{{ c.function.name }}\
                   {{ c.function.arguments | tojson }}</tool_call>{% endfor %}{% elif m.role == 'tool' %}\
                   [{{ m.tool_call_id }}:{{ m.content }}]{% else %}{{ m.content }}{% endif %}{% endfor %}";
        let t = ChatTemplate::new(&TemplateSource::Gguf(src.into()), "qwen2");
        assert_eq!(t.family(), ToolFamily::Hermes);
        let call =
            serde_json::json!({"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}});
        let m = vec![
            TemplateMessage { role: "user".into(), content: "q".into(), ..Default::default() },
            TemplateMessage { role: "assistant".into(), tool_calls: Some(vec![call]), ..Default::default() },
            TemplateMessage {
                role: "tool".into(),
                content: "r".into(),
                tool_call_id: Some("c1".into()),
                ..Default::default()
            },
        ];
        let tools = vec![serde_json::json!({"type": "function", "function": {"name": "f"}})];
        let out = t.render(&m, Some(&tools), false, "", "").unwrap();
        assert_eq!(out, "<tools>f;</tools>q<tool_call>f{\"a\":1}</tool_call>[c1:r]");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_415), (2025, 11, 23));
    }
}
