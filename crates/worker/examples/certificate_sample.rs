//! Writes a sample certificate as PDF and PNG, to look at it as its recipient would:
//! `cargo run -p kepatuhan-worker --example certificate_sample -- DIR` (default
//! `target/certificate-sample`), or `just certificate-sample`.

use chrono::NaiveDate;
use kepatuhan_core::PublishedScore;
use kepatuhan_core::methodology::Zone;
use kepatuhan_worker::render::{CertificateData, Renderer};
use rust_decimal::Decimal;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/certificate-sample".to_owned());
    std::fs::create_dir_all(&dir)?;
    let c = CertificateData {
        code: "K7QX-9D2M-4HTR-WB6N".into(),
        verify_url: "https://kepatuhan.ombudsman.go.id/verify/K7QX-9D2M-4HTR-WB6N".into(),
        recipient: "Dinas Kependudukan dan Pencatatan Sipil".into(),
        recipient_detail: Some("Pemerintah Kabupaten Bangka".into()),
        year: 2023,
        score: PublishedScore::new(Decimal::new(9371, 2))?,
        grade_code: "A".into(),
        grade_label: "Kualitas Tertinggi".into(),
        zone: Some(Zone::Green),
        rank: Some(
            "Peringkat 1 dari 7 kabupaten/kota di Provinsi Kepulauan Bangka Belitung".into(),
        ),
        place: "Jakarta".into(),
        date: NaiveDate::from_ymd_opt(2023, 12, 10).ok_or("date")?,
        signatory_name: "Mokhammad Najih".into(),
        signatory_title: "Ketua Ombudsman Republik Indonesia".into(),
    };
    let renderer = Renderer::new();
    std::fs::write(format!("{dir}/certificate.pdf"), renderer.render(&c)?)?;
    let doc = renderer.document(&c)?;
    let options = typst_render::RenderOptions {
        pixel_per_pt: 1.5.into(),
        ..Default::default()
    };
    typst_render::render(&doc.pages()[0], &options).save_png(format!("{dir}/certificate.png"))?;
    println!("wrote {dir}/certificate.pdf and {dir}/certificate.png");
    Ok(())
}
