//! Rendering certificates (*piagam penghargaan*) to PDF with typst used as a library: the
//! template is `templates/certificate.typ`, fonts are embedded in the binary, the QR code is an
//! SVG made in process. One [`Renderer`] is built per worker and reused (typst caches between
//! compilations); a batch of certificates is laid out in one compilation, a page each, and each
//! page is exported as its own PDF.

use chrono::{Datelike, NaiveDate};
use kepatuhan_core::PublishedScore;
use kepatuhan_core::methodology::Zone;
use typst::diag::{FileError, FileResult};
use typst::ecow::eco_vec;
use typst::foundations::{Bytes, Datetime, Duration};
use typst::model::Document;
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};
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

/// A reusable certificate renderer: the fonts, typst's standard library and the parsed template
/// are made once; each batch is one typst compilation whose data are files of its own world.
pub struct Renderer {
    shared: Shared,
}

/// What every compilation shares. The library holds no per-certificate input, so typst's
/// memoization carries the layout of the template's fixed parts from one batch to the next.
struct Shared {
    library: LazyHash<Library>,
    book: LazyHash<FontBook>,
    fonts: Vec<Font>,
    main: Source,
    batch: FileId,
}

/// The world of one batch: the shared parts, the batch's JSON and its QR codes (the i-th
/// certificate's at `/qr/<i>.svg`, with its file id).
struct BatchWorld<'a> {
    shared: &'a Shared,
    batch: Bytes,
    qrs: Vec<(FileId, Bytes)>,
}

fn file_id(path: &str) -> FileId {
    // The paths are constants of this module and valid.
    let vpath = VirtualPath::new(path).unwrap_or_else(|_| unreachable!("{path} is a valid path"));
    FileId::new(RootedPath::new(VirtualRoot::Project, vpath))
}

impl World for BatchWorld<'_> {
    fn library(&self) -> &LazyHash<Library> {
        &self.shared.library
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &self.shared.book
    }

    fn main(&self) -> FileId {
        self.shared.main.id()
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.shared.main.id() {
            Ok(self.shared.main.clone())
        } else {
            Err(FileError::NotSource)
        }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id == self.shared.batch {
            return Ok(self.batch.clone());
        }
        self.qrs
            .iter()
            .find(|(qr_id, _)| *qr_id == id)
            .map(|(_, qr)| qr.clone())
            .ok_or(FileError::AccessDenied)
    }

    fn font(&self, index: usize) -> Option<Font> {
        self.shared.fonts.get(index).cloned()
    }

    fn today(&self, _offset: Option<Duration>) -> Option<Datetime> {
        None // the template prints the date it is given
    }
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

/// Modules of white space around a QR code (the standard's quiet zone).
const QR_QUIET_ZONE: usize = 4;

/// An SVG QR code for a URL: error correction level M, the mask chosen by the standard's
/// penalty rules, a quiet zone of four modules. Each run of dark modules in a row is one
/// rectangle, which keeps the page's content stream (and its compression) small.
pub fn qr_svg(text: &str) -> Result<String, RenderError> {
    use std::fmt::Write;
    let code = fast_qr::QRBuilder::new(text.as_bytes())
        .ecl(fast_qr::ECL::M)
        .build()
        .map_err(|e| RenderError::Qr(e.to_string()))?;
    let n = code.size;
    let side = n + 2 * QR_QUIET_ZONE;
    let mut path = String::with_capacity(8 * n * n);
    for y in 0..n {
        let row = &code[y];
        let mut x = 0;
        while x < n {
            if !row[x].value() {
                x += 1;
                continue;
            }
            let start = x;
            while x < n && row[x].value() {
                x += 1;
            }
            let run = x - start;
            let _ = write!(
                path,
                "M{} {}h{run}v1h-{run}z",
                start + QR_QUIET_ZONE,
                y + QR_QUIET_ZONE
            );
        }
    }
    Ok(format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {side} {side}" shape-rendering="crispEdges"><rect width="{side}" height="{side}" fill="#fff"/><path fill="#000" d="{path}"/></svg>"##
    ))
}

/// Compilations whose memoized results typst keeps (older ones are evicted after each batch).
const MEMO_MAX_AGE: usize = 3;

impl Renderer {
    /// Loads the embedded fonts and parses the template.
    pub fn new() -> Self {
        let fonts: Vec<Font> = typst_assets::fonts()
            .flat_map(|data| Font::iter(Bytes::new(data)))
            .collect();
        let book = FontBook::from_fonts(&fonts);
        let main = Source::new(file_id("/certificate.typ"), TEMPLATE.to_owned());
        Self {
            shared: Shared {
                library: LazyHash::new(Library::builder().build()),
                book: LazyHash::new(book),
                fonts,
                main,
                batch: file_id("/batch.json"),
            },
        }
    }

    /// Renders one certificate to PDF bytes.
    pub fn render(&self, c: &CertificateData) -> Result<Vec<u8>, RenderError> {
        let mut pdfs = self.render_many(std::slice::from_ref(c))?;
        pdfs.pop()
            .ok_or_else(|| RenderError::Typst("no page".into()))
    }

    /// Renders certificates to one PDF each, laid out together in one typst compilation (the
    /// template's fixed parts are laid out once for the batch).
    pub fn render_many(
        &self,
        certificates: &[CertificateData],
    ) -> Result<Vec<Vec<u8>>, RenderError> {
        let document = self.document_of(certificates)?;
        document
            .pages()
            .iter()
            .map(|page| {
                let single = PagedDocument::new(eco_vec![page.clone()], document.info().clone());
                self.export(&single)
            })
            .collect()
    }

    /// [`Renderer::render_many`] on rayon's thread pool, awaited. Rendering is CPU-bound, and
    /// typst's PDF export already runs parts of itself on that pool: with the whole render there,
    /// the export's parallel parts are taken up by the same threads instead of waking others
    /// that spin while they wait for work (a tenth of the worker's CPU under `perf` when renders
    /// ran on tokio's blocking threads). A panic in typst becomes an error.
    pub async fn render_on_pool(
        self: std::sync::Arc<Self>,
        certificates: Vec<CertificateData>,
    ) -> Result<Vec<Vec<u8>>, RenderError> {
        let (done, rendered) = tokio::sync::oneshot::channel();
        rayon::spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.render_many(&certificates)
            }))
            .unwrap_or_else(|_| Err(RenderError::Typst("the renderer panicked".into())));
            let _ = done.send(outcome);
        });
        rendered
            .await
            .unwrap_or_else(|_| Err(RenderError::Typst("the renderer stopped".into())))
    }

    /// Exports a laid-out certificate to PDF bytes.
    pub fn export(&self, document: &PagedDocument) -> Result<Vec<u8>, RenderError> {
        typst_pdf::pdf(document, &typst_pdf::PdfOptions::default())
            .map_err(|e| RenderError::Typst(format!("{e:?}")))
    }

    /// Lays a certificate out as a typst document (the PDF is exported from it; tests rasterise it).
    pub fn document(&self, c: &CertificateData) -> Result<PagedDocument, RenderError> {
        self.document_of(std::slice::from_ref(c))
    }

    /// Lays certificates out as one document, a page each.
    fn document_of(&self, certificates: &[CertificateData]) -> Result<PagedDocument, RenderError> {
        let year = certificates.first().map_or(0, |c| c.year);
        let batch = serde_json::json!({
            "year": year.to_string(),
            "certificates": certificates.iter().map(fields).collect::<Vec<_>>(),
        });
        let world = BatchWorld {
            shared: &self.shared,
            batch: Bytes::new(batch.to_string().into_bytes()),
            qrs: certificates
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let qr = qr_svg(&c.verify_url)?;
                    Ok((
                        file_id(&format!("/qr/{i}.svg")),
                        Bytes::new(qr.into_bytes()),
                    ))
                })
                .collect::<Result<_, RenderError>>()?,
        };
        let compiled = typst::compile::<PagedDocument>(&world).output;
        typst::comemo::evict(MEMO_MAX_AGE);
        let document = compiled.map_err(|e| RenderError::Typst(format!("{e:?}")))?;
        if document.pages().len() != certificates.len() {
            return Err(RenderError::Typst(format!(
                "{} certificates laid out on {} pages: a certificate must fit on one page",
                certificates.len(),
                document.pages().len()
            )));
        }
        Ok(document)
    }
}

/// A certificate's fields as the template reads them (all text, in Indonesian).
fn fields(c: &CertificateData) -> serde_json::Value {
    serde_json::json!({
        "code": c.code,
        "verify_url": c.verify_url,
        "recipient": c.recipient,
        "recipient_detail": c.recipient_detail.clone().unwrap_or_default(),
        "year": c.year.to_string(),
        "score": c.score.to_indonesian(),
        "grade": format!("{} — {}", c.grade_code, c.grade_label),
        "zone": c.zone.map(zone_label).unwrap_or_default(),
        "zone_key": c.zone.map(|z| z.label_id().to_lowercase()).unwrap_or_default(),
        "rank": c.rank.clone().unwrap_or_default(),
        "place": c.place,
        "date": indonesian_date(c.date),
        "signatory_name": c.signatory_name,
        "signatory_title": c.signatory_title,
    })
}
