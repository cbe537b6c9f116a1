//! Prints what collabd reads from `.eml` files, without a database: the kind and its
//! reason, the threading and report fields, and the reply text. For writing fixtures and
//! for explaining a decision: `cargo run --example classify -- FILE...`.

use collabd::mail::{ClassifyRules, classify::classify, parse};

fn main() {
    let rules = ClassifyRules {
        own_addresses: vec!["partners@brand.example".into(), "hello@brand.example".into()],
    };
    for path in std::env::args().skip(1) {
        let raw = match std::fs::read(&path) {
            Ok(raw) => raw,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        let mail = parse(&raw);
        let class = classify(&mail, &rules);
        println!("== {path}");
        println!("kind:        {} ({})", class.kind.as_str(), class.reason);
        println!("opt_out:     {}", class.opt_out);
        println!("bounce:      {:?}", class.bounce);
        println!("from:        {:?}", mail.from_address);
        println!("subject:     {:?}", mail.subject);
        println!("message_id:  {:?}", mail.message_id);
        println!("in_reply_to: {:?}", mail.in_reply_to);
        println!("references:  {:?}", mail.references);
        println!("recipients:  {:?}", mail.recipients);
        println!("reported ids:        {:?}", mail.signals.reported_message_ids);
        println!("reported recipients: {:?}", mail.signals.reported_recipients);
        println!("reply_text:\n{}\n", mail.reply_text);
    }
}
