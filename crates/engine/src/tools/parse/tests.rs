use super::*;

fn calls(p: &Parsed) -> Vec<(&str, &str)> {
    p.calls.iter().map(|c| (c.name.as_str(), c.arguments.as_str())).collect()
}

/// Feeds `text` in pieces of `n` bytes (on char boundaries) and assembles the events.
fn streamed(family: ToolFamily, text: &str, n: usize) -> (String, Vec<(String, String)>, bool) {
    let mut p = ToolParser::new(family);
    let mut events = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut cut = n.min(rest.len());
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        events.extend(p.push(&rest[..cut]));
        rest = &rest[cut..];
    }
    let (tail, complete) = p.finish();
    events.extend(tail);
    let mut content = String::new();
    let mut out: Vec<(String, String)> = Vec::new();
    for e in events {
        match e {
            ToolEvent::Content(t) => content.push_str(&t),
            ToolEvent::Start { index, name, .. } => {
                assert_eq!(index, out.len(), "indexes count up");
                out.push((name, String::new()));
            }
            ToolEvent::Args { index, text } => out[index].1.push_str(&text),
        }
    }
    (content, out, complete)
}

#[test]
fn hermes_single_call_has_no_content() {
    let text = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"n\": [1, {\"x\": \"}\"}]}}\n</tool_call>";
    let p = parse_output(ToolFamily::Hermes, text);
    assert_eq!(p.content, None);
    assert_eq!(calls(&p), vec![("get_weather", r#"{"city": "Paris", "n": [1, {"x": "}"}]}"#)]);
    assert!(p.calls[0].id.starts_with("call_"));
}

#[test]
fn streaming_in_any_piece_size_gives_the_same_calls() {
    let text = "Let me look.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {\"q\": \"x\\\"y\"}}\n</tool_call>\n<tool_call>{\"name\":\"b\",\"arguments\":{}}</tool_call>";
    let whole = parse_output(ToolFamily::Generic, text);
    assert_eq!(whole.content.as_deref(), Some("Let me look."));
    assert_eq!(calls(&whole), vec![("a", r#"{"q": "x\"y"}"#), ("b", "{}")]);
    for n in [1, 2, 3, 5, 7, 64] {
        let (content, got, complete) = streamed(ToolFamily::Generic, text, n);
        assert!(complete);
        assert_eq!(content, "Let me look.", "piece size {n}");
        assert_eq!(got, vec![("a".into(), r#"{"q": "x\"y"}"#.into()), ("b".into(), "{}".into())], "piece size {n}");
    }
}

#[test]
fn plain_answers_pass_through_unchanged() {
    for text in ["Hello <tool world", "ends with <tool_ca", "  spaced  \n", "a < b and [TOOL] {x}", "é<tool_"] {
        let p = parse_output(ToolFamily::Hermes, text);
        assert_eq!((p.content.as_deref(), p.calls.len()), (Some(text), 0));
        let (content, got, _) = streamed(ToolFamily::Hermes, text, 1);
        assert_eq!((content.as_str(), got.len()), (text, 0));
    }
    assert_eq!(parse_output(ToolFamily::Hermes, "").content, None);
}

#[test]
fn a_call_cut_off_at_length_is_content() {
    let text = "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"q\": \"unfini";
    let p = parse_output(ToolFamily::Hermes, text);
    assert_eq!((p.content.as_deref(), p.calls.len()), (Some(text), 0));
    let (_, got, complete) = streamed(ToolFamily::Hermes, text, 4);
    assert!(!complete, "the stream says the call was cut off");
    assert_eq!(got.len(), 1);
    // Cut before the name: nothing was announced, so it stays text.
    let text = "<tool_call>\n{\"na";
    assert_eq!(parse_output(ToolFamily::Hermes, text).content.as_deref(), Some(text));
    // After complete calls, a cut-off one is dropped, announced or not.
    let one = "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>\n";
    for tail in ["<tool_ca", "<tool_call>{\"name\": \"a\", \"argu", "<tool_call>{\"name\": \"a\", \"arguments\": {\"x"]
    {
        let p = parse_output(ToolFamily::Hermes, &format!("{one}{tail}"));
        assert_eq!((p.content.as_deref(), calls(&p)), (None, vec![("a", "{}")]), "{tail}");
    }
}

#[test]
fn malformed_blocks_are_content_and_reordered_keys_still_parse() {
    let bad = "<tool_call>not json</tool_call>";
    let p = parse_output(ToolFamily::Hermes, bad);
    assert_eq!((p.content.as_deref(), p.calls.len()), (Some(bad), 0));
    let reordered = "<tool_call>{\"arguments\": {\"a\": 1}, \"name\": \"f\"}</tool_call>";
    assert_eq!(calls(&parse_output(ToolFamily::Hermes, reordered)), vec![("f", r#"{"a":1}"#)]);
    let wrapped =
        "<tool_call>{\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": \"{}\"}}</tool_call>";
    assert_eq!(calls(&parse_output(ToolFamily::Hermes, wrapped)), vec![("f", "{}")]);
}

#[test]
fn llama3_calls_are_the_whole_answer() {
    let text = " {\"name\": \"get_time\", \"parameters\": {\"tz\": \"UTC\"}}";
    assert_eq!(calls(&parse_output(ToolFamily::Llama3, text)), vec![("get_time", r#"{"tz": "UTC"}"#)]);
    let tagged = "<|python_tag|>{\"name\": \"f\", \"arguments\": {}}";
    assert_eq!(calls(&parse_output(ToolFamily::Llama3, tagged)), vec![("f", "{}")]);
    let json_answer = "{\"answer\": 42}";
    let p = parse_output(ToolFamily::Llama3, json_answer);
    assert_eq!((p.content.as_deref(), p.calls.len()), (Some(json_answer), 0));
    let prose = "The object {\"name\": \"x\", \"parameters\": {}} is an example.";
    assert_eq!(parse_output(ToolFamily::Llama3, prose).calls.len(), 0);
    let (_, got, _) = streamed(ToolFamily::Llama3, text, 3);
    assert_eq!(got, vec![("get_time".into(), r#"{"tz": "UTC"}"#.into())]);
}

#[test]
fn mistral_lists_stream_each_call() {
    let text = "[TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {\"x\": 1}}, {\"name\": \"b\", \"arguments\": {}}]";
    assert_eq!(calls(&parse_output(ToolFamily::Mistral, text)), vec![("a", r#"{"x": 1}"#), ("b", "{}")]);
    let (_, got, _) = streamed(ToolFamily::Mistral, text, 2);
    assert_eq!(got.len(), 2);
    let m = parse_output(ToolFamily::Mistral, text);
    assert!(m.calls.iter().all(|c| c.id.len() == 9));
    let odd = "[TOOL_CALLS][{\"arguments\": {}, \"name\": \"c\"}]";
    assert_eq!(calls(&parse_output(ToolFamily::Mistral, odd)), vec![("c", "{}")]);
}
