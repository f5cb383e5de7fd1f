//! The console page speaks protobuf through a table of its own
//! (`assets/console/proto.js`, as its Content-Security-Policy rules out a
//! generated codec): every field it lists must be the field of
//! `proto/ptt.proto` with that number, name and type, or the page and the
//! relay would read each other's messages wrong without an error.

use std::collections::HashMap;
use std::path::Path;

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto};

/// One entry of the page's table: `[number, 'camelName', 'type', 'oneof'?]`.
#[derive(Debug)]
struct PageField {
    message: String,
    number: i32,
    name: String,
    kind: String,
    oneof: Option<String>,
}

/// The quoted strings and the leading number of one `[...]` entry.
fn entry(message: &str, text: &str) -> PageField {
    let mut parts = text.split(',').map(str::trim);
    let number = parts
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{message}: entry {text:?} does not start with a field number"));
    let mut quoted = parts.map(|part| part.trim_matches('\'').to_owned());
    let name = quoted.next().expect("a name");
    let kind = quoted.next().expect("a type");
    PageField {
        message: message.to_owned(),
        number,
        name,
        kind,
        oneof: quoted.next(),
    }
}

/// `text` up to the first `]` outside quotes (types like `'GroupInfo[]'`
/// hold brackets).
fn up_to_closing_bracket(text: &str) -> &str {
    let mut quoted = false;
    for (at, c) in text.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            ']' if !quoted => return &text[..at],
            _ => {}
        }
    }
    panic!("entry {text:?} is not closed")
}

/// Every field of the page's `SCHEMA` table, read from the script's text.
fn page_schema(script: &str) -> Vec<PageField> {
    let start = script.find("const SCHEMA = {").expect("the SCHEMA table");
    let end = start + script[start..].find("\n};").expect("the end of SCHEMA");
    let mut fields = Vec::new();
    let mut message = String::new();
    for line in script[start..end].lines().skip(1) {
        let line = line.trim();
        if let Some((name, rest)) = line.split_once(": [")
            && name.chars().all(|c| c.is_ascii_alphanumeric())
        {
            message = name.to_owned();
            // A one-line message: `Name: [[1, 'a', 'uint32']],`.
            if let Some(inner) = rest.strip_prefix('[') {
                fields.push(entry(&message, up_to_closing_bracket(inner)));
            }
            continue;
        }
        if let Some(inner) = line.strip_prefix('[') {
            fields.push(entry(&message, up_to_closing_bracket(inner)));
        }
    }
    fields
}

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The page's name for a field's type, as the proto declares it.
fn page_type(field: &FieldDescriptorProto) -> String {
    let base = match field.r#type() {
        Type::Uint32 => "uint32".to_owned(),
        Type::Uint64 => "uint64".to_owned(),
        Type::Int32 => "int32".to_owned(),
        Type::Int64 => "int64".to_owned(),
        Type::Bool => "bool".to_owned(),
        Type::String => "string".to_owned(),
        Type::Bytes => "bytes".to_owned(),
        Type::Double => "double".to_owned(),
        Type::Float => "float".to_owned(),
        Type::Enum => "enum".to_owned(),
        Type::Message => field
            .type_name()
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_owned(),
        other => format!("{other:?}"),
    };
    if field.label() == Label::Repeated {
        format!("{base}[]")
    } else if field.proto3_optional() {
        format!("{base}?")
    } else {
        base
    }
}

#[test]
fn the_console_pages_protobuf_table_matches_ptt_proto() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let proto_dir = root.join("../../proto");
    let descriptors =
        protox::compile([proto_dir.join("ptt.proto")], [&proto_dir]).expect("ptt.proto compiles");
    let messages: HashMap<&str, &DescriptorProto> = descriptors
        .file
        .iter()
        .flat_map(|file| &file.message_type)
        .map(|message| (message.name(), message))
        .collect();
    let script = std::fs::read_to_string(root.join("src/assets/console/proto.js")).unwrap();
    let fields = page_schema(&script);
    assert!(
        fields.len() > 40,
        "the table was read: {} fields",
        fields.len()
    );
    for field in &fields {
        let message = messages
            .get(field.message.as_str())
            .unwrap_or_else(|| panic!("{} is not a message of ptt.proto", field.message));
        let proto = message
            .field
            .iter()
            .find(|f| f.number() == field.number)
            .unwrap_or_else(|| panic!("{}: no field {} in ptt.proto", field.message, field.number));
        let what = format!("{}.{} ({})", field.message, field.name, field.number);
        assert_eq!(camel(proto.name()), field.name, "{what}: name");
        assert_eq!(page_type(proto), field.kind, "{what}: type");
        let oneof = proto
            .oneof_index
            .filter(|_| !proto.proto3_optional())
            .and_then(|index| message.oneof_decl.get(usize::try_from(index).ok()?))
            .map(|decl| camel(decl.name()));
        assert_eq!(oneof, field.oneof, "{what}: oneof");
    }
}
