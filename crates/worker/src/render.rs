//! Rendering a certificate (*piagam penghargaan*) to PDF with typst used as a library: the
//! template is `templates/certificate.typ`, fonts are embedded in the binary, the QR code is an
//! SVG made in process. One [`Renderer`] is built per worker and reused (typst caches between
//! compilations).

use chrono::{Datelike, NaiveDate};
use kepatuhan_core::PublishedScore;
use kepatuhan_core::methodology::Zone;
use typst::foundations::{Dict, IntoValue};
use typst_as_lib::TypstEngine;
use typst_layout::PagedDocument;

static TEMPLATE: &str = include_str!("../templates/certificate.typ");

/// What a certificate says.
#[derive(Debug, Clone)]
pub struct CertificateData {
    /// Verification code, printed and in the QR code.
    pub code: String,
    /// Public verification URL (`{PUBLIC_BASE_URL}/verify/{code}`).
    pub verify_url: String,
    /// The recipient: an entity's name, or a unit's.
    pub recipient: String,
    /// For a unit, its entity's name.
    pub recipient_detail: Option<String>,
    /// Cycle year.
    pub year: u16,
    /// Published score.
    pub score: PublishedScore,
    /// Grade code, e.g. `A`.
    pub grade_code: String,
    /// Grade label, e.g. `Kualitas Tertinggi`.
    pub grade_label: String,
    /// Zone, where the methodology has zones.
    pub zone: Option<Zone>,
    /// Rank sentence, e.g. `Peringkat 1 dari 3 kabupaten/kota di Provinsi Kepulauan Bangka Belitung`.
    pub rank: Option<String>,
    /// Place of signature.
    pub place: String,
    /// Date of signature.
    pub date: NaiveDate,
    /// Signatory's name.
    pub signatory_name: String,
    /// Signatory's title.
    pub signatory_title: String,
}

/// Why a certificate could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The QR code could not be made (text too long).
    #[error("QR code: {0}")]
    Qr(String),
    /// Typst failed to compile or export.
    #[error("typst: {0}")]
    Typst(String),
}

/// A reusable certificate renderer.
pub struct Renderer {
    engine: TypstEngine<typst_as_lib::TypstTemplateMainFile>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Renderer")
    }
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

/// Indonesian month names.
const MONTHS: [&str; 12] = [
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
];

/// A date in Indonesian: `10 Desember 2025`.
///
/// ```
/// use chrono::NaiveDate;
/// let date = NaiveDate::from_ymd_opt(2025, 12, 10).unwrap();
/// assert_eq!(kepatuhan_worker::render::indonesian_date(date), "10 Desember 2025");
/// ```
pub fn indonesian_date(date: NaiveDate) -> String {
    format!(
        "{} {} {}",
        date.day(),
        MONTHS[date.month0() as usize],
        date.year()
    )
}

/// The zone in Indonesian, e.g. `Zona Hijau`.
pub fn zone_label(zone: Zone) -> String {
    format!("Zona {}", zone.label_id())
}

/// An SVG QR code for a URL.
pub fn qr_svg(text: &str) -> Result<String, RenderError> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| RenderError::Qr(e.to_string()))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .quiet_zone(true)
        .min_dimensions(240, 240)
        .build())
}

impl Renderer {
    /// Builds the engine with the embedded fonts.
    pub fn new() -> Self {
        let engine = TypstEngine::builder()
            .main_file(TEMPLATE)
            .fonts(typst_assets::fonts())
            .comemo_evict_max_age(Some(10))
            .build();
        Self { engine }
    }

    /// Renders one certificate to PDF bytes.
    pub fn render(&self, c: &CertificateData) -> Result<Vec<u8>, RenderError> {
        let doc = self.document(c)?;
        typst_pdf::pdf(&doc, &typst_pdf::PdfOptions::default())
            .map_err(|e| RenderError::Typst(format!("{e:?}")))
    }

    /// Lays a certificate out as a typst document (the PDF is exported from it; tests rasterise it).
    pub fn document(&self, c: &CertificateData) -> Result<PagedDocument, RenderError> {
        let mut inputs = Dict::new();
        for (k, v) in [
            ("code", c.code.clone()),
            ("verify_url", c.verify_url.clone()),
            ("recipient", c.recipient.clone()),
            (
                "recipient_detail",
                c.recipient_detail.clone().unwrap_or_default(),
            ),
            ("year", c.year.to_string()),
            ("score", c.score.to_indonesian()),
            ("grade", format!("{} — {}", c.grade_code, c.grade_label)),
            ("zone", c.zone.map(zone_label).unwrap_or_default()),
            (
                "zone_key",
                c.zone
                    .map(|z| z.label_id().to_lowercase())
                    .unwrap_or_default(),
            ),
            ("rank", c.rank.clone().unwrap_or_default()),
            ("place", c.place.clone()),
            ("date", indonesian_date(c.date)),
            ("signatory_name", c.signatory_name.clone()),
            ("signatory_title", c.signatory_title.clone()),
        ] {
            inputs.insert(k.into(), v.into_value());
        }
        let qr = qr_svg(&c.verify_url)?;
        inputs.insert(
            "qr".into(),
            typst::foundations::Bytes::new(qr.into_bytes()).into_value(),
        );
        self.engine
            .compile_with_input(inputs)
            .output
            .map_err(|e| RenderError::Typst(format!("{e:?}")))
    }
}
