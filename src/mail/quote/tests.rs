//! Each shape the line classifier cuts on, with messages written for these tests.

use super::{new_text, starts_with_header_block};

fn text(body: &str) -> String {
    new_text(body).text
}

/// Sure and equal to `want`.
#[track_caller]
fn sure(body: &str, want: &str) {
    let got = new_text(body);
    assert_eq!(got.text, want, "{body:?}");
    assert_eq!(got.unsure, None, "{body:?}");
}

#[test]
fn gmail_history_is_removed() {
    let body = "Sounds great, count me in!\n\nOn Mon, 2 Nov 2026 at 10:00, Brand <p@b.example> wrote:\n> Hi Ana,\n> would you like to...";
    sure(body, "Sounds great, count me in!");
}

#[test]
fn outlook_block_is_removed_but_a_from_sentence_is_kept() {
    let body = "Yes please.\r\n\r\nFrom: Brand <p@b.example>\r\nSent: Monday\r\nTo: Ana\r\nSubject: Collab\r\n\r\nHi";
    sure(body, "Yes please.");
    sure("From: my side, yes.\nThanks", "From: my side, yes.\nThanks");
}

#[test]
fn outlook_blocks_in_other_languages() {
    let blocks = [
        "Von: Brand <p@b.example>\nGesendet: Montag, 16. November 2026 10:00\nAn: Dan\nBetreff: Kooperation",
        "De : Brand <p@b.example>\nEnvoyé : lundi 16 novembre 2026 10:00\nÀ : Chloé\nObjet : Collab",
        "Da: Brand <p@b.example>\nInviato: lunedì 16 novembre 2026 10:00\nA: Ben\nOggetto: Collab",
        "De: Brand <p@b.example>\nEnviado: lunes, 16 de noviembre de 2026 10:00\nPara: Ana\nAsunto: Collab",
        "De: Brand <p@b.example>\nEnviado: segunda-feira, 16 de novembro de 2026 10:00\nPara: Ana\nAssunto: Collab",
        "Van: Brand <p@b.example>\nVerzonden: maandag 16 november 2026 10:00\nAan: Dan\nOnderwerp: Collab",
        "Från: Brand <p@b.example>\nSkickat: den 16 november 2026 10:00\nTill: Dan\nÄmne: Collab",
        "Fra: Brand <p@b.example>\nSendt: 16. november 2026 10:00\nTil: Dan\nEmne: Collab",
        "Od: Brand <p@b.example>\nWysłane: poniedziałek, 16 listopada 2026 10:00\nDo: Dan\nTemat: Collab",
        "От: Brand <p@b.example>\nОтправлено: 16 ноября 2026 г. 10:00\nКому: Dan\nТема: Collab",
        "差出人: Brand <p@b.example>\n送信日時: 2026年11月16日 10:00\n宛先: Dan\n件名: Collab",
        "发件人: Brand <p@b.example>\n发送时间: 2026年11月16日 10:00\n收件人: Dan\n主题: Collab",
        "**From:** Brand <p@b.example>\n**Sent:** Monday, November 16, 2026 10:00 AM\n**To:** Dan\n**Subject:** Collab",
        "*Von:* Brand <p@b.example>\n*Gesendet:* Montag, 16. November 2026 10:00",
        "De: Brand <p@b.example>\nEnviado el: lunes, 16 de noviembre de 2026 10:00\nPara: Ana",
        "寄件者: Brand <p@b.example>\n寄件日期: 2026年11月16日 10:00\n收件者: Ben\n主旨: Collab",
        "From: Brand <p@b.example>\nDate: Monday, 16 November 2026 at 10:00\nTo: Ana\nSubject: Collab",
    ];
    for block in blocks {
        sure(
            &format!("Count me in.\n\n{block}\n\nNot interested? Reply no thanks."),
            "Count me in.",
        );
        let ruled = format!("Count me in.\n________________________________\n{block}\n\nHi");
        sure(&ruled, "Count me in.");
        let original = format!("Count me in.\n\n-----Original Message-----\n{block}\nHi");
        sure(&original, "Count me in.");
        assert!(starts_with_header_block(&format!("\n\n{block}\nHi")), "{block}");
    }
    // A blank line between header lines, as HTML conversion leaves them.
    sure("Sí.\n\n**De:** Brand\n\n**Enviado:** lunes\n\nHola", "Sí.");
}

#[test]
fn original_message_lines_and_translations() {
    for sep in [
        "-----Original Message-----",
        "----- Original Message -----",
        "-----Ursprüngliche Nachricht-----",
        "-------- Message d'origine --------",
        "*-----Mensaje original-----*",
        "------------------ 原始邮件 ------------------",
        "---------- Forwarded message ---------",
    ] {
        sure(&format!("Interested!\n{sep}\nFrom: x\nthe pitch"), "Interested!");
    }
}

#[test]
fn reply_headers_in_many_languages() {
    let headers = [
        "On Mon, Nov 16, 2026 at 10:00 AM Brand <partners@brand.example> wrote:",
        "Am Mo., 16. Nov. 2026 um 10:00 Uhr schrieb Brand <partners@brand.example>:",
        "Brand <partners@brand.example> schrieb am Mo., 16. Nov. 2026, 10:00:",
        "Le lun. 16 nov. 2026 à 10:00, Brand <partners@brand.example> a écrit :",
        "El lun, 16 nov 2026 a las 10:00, Brand (<partners@brand.example>) escribió:",
        "Il giorno lun 16 nov 2026 alle ore 10:00 Brand <partners@brand.example> ha scritto:",
        "Em seg., 16 de nov. de 2026 às 10:00, Brand <partners@brand.example> escreveu:",
        "Op ma 16 nov. 2026 om 10:00 schreef Brand <partners@brand.example>:",
        "Den mån 16 nov. 2026 kl 10:00 skrev Brand <partners@brand.example>:",
        "man. 16. nov. 2026 kl. 10:00 skrev Brand <partners@brand.example>:",
        "W dniu 16.11.2026 o 10:00, Brand <partners@brand.example> pisze:",
        "pon., 16 lis 2026 o 10:00 Brand <partners@brand.example> napisał(a):",
        "понедельник, 16 ноября 2026 г., 10:00 пользователь Brand <partners@brand.example> написал:",
        "16.11.2026, 10:00, \"Brand\" <partners@brand.example>:",
        "пн, 16 нояб. 2026 г. в 10:00, Brand <partners@brand.example>:",
        "2026年11月16日(月) 10:00 Brand <partners@brand.example>:",
        "在 2026年11月16日 10:00，Brand <partners@brand.example> 写道：",
        "2016-03-03 17:21 GMT+01:00 Some One <some.one@example.com>:",
        "2013/7/20 Someone <someone@example.com>",
        "Am Montag, 16. November 2026, 10:00:00 MEZ hat Brand <partners@brand.example> Folgendes geschrieben:",
        "Op 16 nov. 2026 om 10:00 heeft Brand <partners@brand.example> het volgende geschreven:",
        "Wiadomość napisana przez Brand <partners@brand.example> w dniu 16.11.2026, o godz. 10:00:",
        "2026/11/16 10:00、Brand <partners@brand.example>のメール:",
        "16.11.2026 10:00, Brand пишет:",
        "Понедельник, 16 ноября 2026, 10:00 +03:00 от Brand <partners@brand.example>:",
        "Brand <partners@brand.example> 于2026年11月16日周一 10:00写道：",
        "El 16/11/26 a las 10:00, Brand escribió:",
        "Il 16/11/26 10:00, Brand ha scritto:",
        "Den 2026-11-16 kl. 10:00, skrev Brand:",
    ];
    for header in headers {
        // Above quoted lines, and above history pasted without quote marks.
        sure(&format!("Ja, gerne!\n\n{header}\n\n> Hi,\n> the pitch"), "Ja, gerne!");
        sure(&format!("Ja, gerne!\n{header}\nHi,\nthe pitch"), "Ja, gerne!");
    }
}

#[test]
fn reply_headers_wrapped_over_lines() {
    let wrapped = [
        "Le lun. 16 nov. 2026 à 10:00, Brand <\npartners@brand.example> a écrit :",
        "On Mon, Nov 16, 2026 at 10:00 AM Brand Partnerships <\npartners@brand.example> wrote:",
        "On Mon, Nov 16, 2026 at 10:00 AM Brand Partnerships\n<partners@brand.example>\nwrote:",
        "Am Mo., 16. Nov. 2026 um 10:00 Uhr schrieb Brand Partnerships <\npartners@brand.example>:",
    ];
    for header in wrapped {
        sure(&format!("Oui !\n\n{header}\n\n> Bonjour\n> le pitch"), "Oui !");
        sure(&format!("Oui !\n{header}\nBonjour"), "Oui !");
    }
}

#[test]
fn bar_quote_under_a_date_first_header() {
    let body = "Thanks, I'll take a look at this today.\n\n2013/7/20 Someone <someone@example.com>\n\n| A new comment was posted.\n| Not interested? Reply \"no thanks\".\n| ---\n| Reply to this email directly.";
    sure(body, "Thanks, I'll take a look at this today.");
}

#[test]
fn bottom_and_inline_posting_keep_own_lines_in_order() {
    let thunderbird =
        "On 16/11/2026 10:00, Brand wrote:\n> Hi Ana,\n> would you like to join?\n\nHello\n";
    sure(thunderbird, "Hello");
    let inline = "Hi!\n\nOn Mon, Nov 16, 2026 at 10:00 AM Brand <p@b.example> wrote:\n> What is your rate?\n\n800 per reel.\n\n> When can you post?\n\nNext week.\n\n> Not interested? Reply no thanks.\n\nAna";
    sure(inline, "Hi!\n\n800 per reel.\n\nNext week.\n\nAna");
    // Quote marks straight away, no attribution.
    sure("> your pitch\n> more\nSure, send it.", "Sure, send it.");
}

#[test]
fn mobile_and_client_signatures() {
    for sig in [
        "Sent from my iPhone",
        "Envoyé de mon iPhone",
        "Von meinem iPhone gesendet",
        "Enviado desde mi iPhone",
        "Inviato da iPhone",
        "Verstuurd vanaf mijn iPhone",
        "Skickat från min iPhone",
        "Sendt fra min iPad",
        "Wysłane z iPhone'a",
        "Отправлено с iPhone",
        "iPhoneから送信",
        "发自我的iPhone",
        "Sent from Outlook Mobile",
        "Get Outlook for iOS",
        "Get Outlook for Android",
        "Obtenir Outlook pour Android",
        "Outlook für iOS herunterladen",
        "Sent from Yahoo Mail on Android",
        "Sent with Proton Mail secure email.",
        "Sent via BlackBerry from T-Mobile",
        "Sent using the Mail.ru app",
        "Sent from my Galaxy",
        "Sent from my Samsung Galaxy smartphone.",
        "Отправлено из мобильной Почты Mail.ru",
        "*Sent from my iPhone*",
        "Get [Outlook for iOS][2]",
        "Get Outlook for Android<https://aka.ms/AAb9ysg>",
    ] {
        sure(
            &format!("Yes, deal.\nAna\n\n{sig}\n\nOn Mon, Brand <p@b.example> wrote:\n> pitch"),
            "Yes, deal.\nAna",
        );
        sure(&format!("Yes, deal.\n\n{sig}"), "Yes, deal.");
    }
}

#[test]
fn dash_signature_block_goes() {
    sure("Deal.\n> old text\n-- \nAna\nhttps://ana.example", "Deal.");
    sure("Deal.\n--\nAna Souza | Creator", "Deal.");
}

#[test]
fn all_quote_keeps_the_text_and_is_unsure() {
    let body = "> Hi Ana,\n> would you like to join?";
    let got = new_text(body);
    assert_eq!(got.text, body);
    assert!(got.unsure.is_some());
    assert_eq!(new_text("").text, "");
    assert_eq!(new_text("").unsure, None);
}

#[test]
fn leftovers_make_the_text_unsure() {
    // A lone header line with an address is not a block, but it is doubtful.
    let got = new_text("Sure!\nFrom: Brand <p@b.example>\nNot interested? Reply no thanks.");
    assert_eq!(got.text, "Sure!\nFrom: Brand <p@b.example>\nNot interested? Reply no thanks.");
    assert!(got.unsure.is_some());
    // An attribution the patterns do not know, followed by unquoted history.
    let got = new_text("Okay!\n\nBrand <p@b.example> kirjoitti:\nNot interested? Reply no thanks.");
    assert!(got.unsure.is_some(), "{got:?}");
}

#[test]
fn sentences_that_look_like_shapes_are_kept() {
    // Kept, but an attribution without a date could look like this: not sure.
    let got = new_text("On Monday I wrote:\nthe draft is ready.");
    assert_eq!(got.text, "On Monday I wrote:\nthe draft is ready.");
    assert!(got.unsure.is_some());
    sure(
        "| Format | Rate |\n| Reel | 800 |\nThoughts?",
        "| Format | Rate |\n| Reel | 800 |\nThoughts?",
    );
    sure("Sent the invoice yesterday.\nAna", "Sent the invoice yesterday.\nAna");
    sure("Deal!\n\nSent with love,\nAna", "Deal!\n\nSent with love,\nAna");
    sure("To: the whole team, thanks!", "To: the whole team, thanks!");
}

#[test]
fn long_bodies_are_capped() {
    let body = "line\n".repeat(5000);
    let got = new_text(&body);
    assert_eq!(got.text.lines().count(), super::MAX_LINES);
    assert!(got.unsure.is_some());
    assert_eq!(text(&"x".repeat(100_000)).len(), 100_000);
}

#[test]
fn inline_answers_under_a_header_block() {
    let body = "Hallo,\n\nim Text.\n\n----- Ursprüngliche Mail -----\nVon: \"Brand\" <p@b.example>\nAn: Ana\nGesendet: Montag, 2. November 2026 10:00:00\nBetreff: Winter\n\n> Wie hoch?\n\n1.500 EUR.\n\n> Not interested? Reply no thanks.\n\nJana";
    sure(body, "Hallo,\n\nim Text.\n\n1.500 EUR.\n\nJana");
    let proton = "Hi,\n\nbelow.\n\nSent with Proton Mail secure email.\n\nOn Monday, November 2nd, 2026 at 10:00, Brand <p@b.example> wrote:\n\n> Rate?\n\n800.\n\n> Bye";
    sure(proton, "Hi,\n\nbelow.\n\n800.");
}

#[test]
fn pasted_reports_end_the_new_text() {
    let body = "Oi! Voltou com esse erro.\n\nAna\n\nNão foi possível entregar a mensagem\n\nDelivery to the following recipient failed permanently:\n\n  x@b.example\n\nEnviado do meu iPhone";
    sure(body, "Oi! Voltou com esse erro.\n\nAna");
    let body = "Hola:\n\nPego el aviso.\n\nLucía\n\n-------- Aviso pegado --------\nThis is the mail system at host mail.b.example.\n";
    sure(body, "Hola:\n\nPego el aviso.\n\nLucía");
}

#[test]
fn framed_attributions_and_plain_rules() {
    let zoho =
        "Deal!\n\n---- On Mon, 16 Nov 2026 10:00:00 +0100 Brand <p@b.example> wrote ----\n\nHi Ana";
    sure(zoho, "Deal!");
    sure("Yes\n\n----------\nFrom: Brand <p@b.example>\nSent: Monday\n\nHi", "Yes");
    // A rule of dashes alone is decoration, not history.
    sure(
        "Thanks\n----------\nAna Souza\nPhotographer",
        "Thanks\n----------\nAna Souza\nPhotographer",
    );
}
