//! A rendered certificate is read back: its text shows the recipient, the score in Indonesian
//! format and the code; its QR code (rasterised from the very document) decodes to the URL.

use chrono::NaiveDate;
use kepatuhan_core::PublishedScore;
use kepatuhan_core::methodology::Zone;
use kepatuhan_worker::render::{CertificateData, Renderer};
use rust_decimal::Decimal;

fn data(recipient: &str, detail: Option<&str>) -> CertificateData {
    CertificateData {
        code: "K7QX-9D2M-4HTR-WB6N".into(),
        verify_url: "https://kepatuhan.ombudsman.go.id/verify/K7QX-9D2M-4HTR-WB6N".into(),
        recipient: recipient.into(),
        recipient_detail: detail.map(str::to_owned),
        year: 2023,
        score: PublishedScore::new(Decimal::new(9371, 2)).unwrap(),
        grade_code: "A".into(),
        grade_label: "Kualitas Tertinggi".into(),
        zone: Some(Zone::Green),
        rank: Some(
            "Peringkat 1 dari 7 kabupaten/kota di Provinsi Kepulauan Bangka Belitung".into(),
        ),
        place: "Jakarta".into(),
        date: NaiveDate::from_ymd_opt(2023, 12, 10).unwrap(),
        signatory_name: "Mokhammad Najih".into(),
        signatory_title: "Ketua Ombudsman Republik Indonesia".into(),
    }
}

fn text_of(pdf: &[u8]) -> String {
    pdf_extract::extract_text_from_mem(pdf)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_pdf_says_what_it_should_in_indonesian() {
    let renderer = Renderer::new();
    let pdf = renderer
        .render(&data("Pemerintah Kabupaten Bangka", None))
        .unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    assert!(pdf.len() < 100 * 1024, "{} bytes", pdf.len());
    let text = text_of(&pdf);
    for expected in [
        "PIAGAM PENGHARGAAN",
        "Pemerintah Kabupaten Bangka",
        "Penilaian Kepatuhan Penyelenggaraan Pelayanan Publik Tahun 2023",
        "93,71",
        "A — Kualitas Tertinggi",
        "Zona Hijau",
        "Peringkat 1 dari 7",
        "Jakarta, 10 Desember 2023",
        "K7QX-9D2M-4HTR-WB6N",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in {text:?}");
    }
}

#[test]
fn long_unit_names_wrap_onto_one_page() {
    let renderer = Renderer::new();
    let long = "Unit Pelaksana Teknis Daerah Pusat Kesehatan Masyarakat Rawat Inap dan Pelayanan Obstetri Neonatal Emergensi Dasar Sungailiat";
    assert!(long.len() > 80);
    let c = data(long, Some("Pemerintah Kabupaten Bangka"));
    let doc = renderer.document(&c).unwrap();
    assert_eq!(doc.pages().len(), 1, "a certificate is one page");
    let text = text_of(&renderer.render(&c).unwrap());
    assert!(text.contains("Obstetri Neonatal"), "{text}");
    assert!(text.contains("Pemerintah Kabupaten Bangka"));
}

#[test]
fn the_qr_code_decodes_to_the_verification_url() {
    let renderer = Renderer::new();
    let c = data("Pemerintah Kota Pangkalpinang", None);
    let doc = renderer.document(&c).unwrap();
    let options = typst_render::RenderOptions {
        pixel_per_pt: 4.0.into(),
        ..Default::default()
    };
    let pixmap = typst_render::render(&doc.pages()[0], &options);
    let (w, h) = (pixmap.width() as usize, pixmap.height() as usize);
    let luma: Vec<u8> = pixmap
        .data()
        .chunks(4)
        .map(|p| {
            u8::try_from((u16::from(p[0]) + u16::from(p[1]) + u16::from(p[2])) / 3)
                .unwrap_or(u8::MAX)
        })
        .collect();
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| luma[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code on the page");
    let (_, content) = grids[0].decode().unwrap();
    assert_eq!(content, c.verify_url);
}

#[test]
fn a_batch_gives_each_certificate_its_own_pdf() {
    let renderer = Renderer::new();
    let mut batch = vec![
        data("Pemerintah Kabupaten Bangka", None),
        data("Dinas Kesehatan", Some("Pemerintah Kota Pangkalpinang")),
        data("Kementerian Agama", None),
    ];
    batch[1].code = "ABCD-EFGH-JKMN-PQRS".into();
    batch[1].score = PublishedScore::new(Decimal::new(8150, 2)).unwrap();
    let pdfs = renderer.render_many(&batch).unwrap();
    assert_eq!(pdfs.len(), 3);
    let texts: Vec<String> = pdfs.iter().map(|pdf| text_of(pdf)).collect();
    assert!(texts[0].contains("Pemerintah Kabupaten Bangka"));
    assert!(!texts[0].contains("Kementerian Agama"), "{}", texts[0]);
    assert!(
        texts[1].contains("Dinas Kesehatan") && texts[1].contains("Pemerintah Kota Pangkalpinang")
    );
    assert!(texts[1].contains("81,50") && texts[1].contains("ABCD-EFGH-JKMN-PQRS"));
    assert!(!texts[1].contains("93,71"), "{}", texts[1]);
    assert!(texts[2].contains("Kementerian Agama"));
    // Rendered alone, a certificate says the same as in its batch.
    assert_eq!(text_of(&renderer.render(&batch[1]).unwrap()), texts[1]);
}

#[test]
fn even_an_absurdly_long_name_keeps_a_certificate_on_one_page() {
    // The batch's pages map one to one to its certificates (a mismatch is an error).
    let renderer = Renderer::new();
    let absurd = "Unit Pelayanan Terpadu ".repeat(150);
    let batch = vec![
        data(&absurd, Some("Pemerintah Kabupaten Bangka")),
        data("Pemerintah Kabupaten Bangka", None),
    ];
    let doc = renderer.document(&batch[0]).unwrap();
    assert_eq!(doc.pages().len(), 1);
    let pdfs = renderer
        .render_many(&batch)
        .map_err(|e| e.to_string())
        .unwrap();
    assert_eq!(pdfs.len(), 2);
    assert!(text_of(&pdfs[1]).contains("Pemerintah Kabupaten Bangka"));
}
