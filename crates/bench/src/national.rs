//! The national dataset: 38 provinces with their regional offices, ministries, agencies,
//! provincial governments, cities and regencies with 5–8 units each, a full sheet of indicator
//! values per unit under the 2022–2024 methodology, about 25 survey responses per unit, two
//! earlier cycles of published unit scores, and the assessors who enter the values (about
//! [`ASSESSOR_UNITS`] units each, within one province). Seeded: the same seed gives the same
//! files. [`crate::planted`] plants integrity anomalies into it.

use std::fmt::Write as _;
use std::path::Path;

use kepatuhan_core::Methodology;
use kepatuhan_core::methodology::{IndicatorId, SurveyMethod};
use kepatuhan_core::scoring::AnswerInput;
use kepatuhan_core::synthetic::{Quality, Rng};
use serde_json::{Value, json};

/// Units an assessor enters, about: each province's units (in entity order, so an assessor
/// visits whole local governments) are dealt to assessors this many at a time, and so are the
/// ministries' and agencies' units to assessors of HQ. The count of assessors grows with the
/// units, as it does when every government assesses all its units.
pub const ASSESSOR_UNITS: usize = 25;

/// The evidence note of a value, where the assessor wrote one.
const EVIDENCE_NOTE: &str = "Observasi lapangan, wawancara petugas dan dokumen";

/// The 38 provinces with their Kemendagri codes.
const PROVINCES: [(&str, &str); 38] = [
    ("11", "Aceh"),
    ("12", "Sumatera Utara"),
    ("13", "Sumatera Barat"),
    ("14", "Riau"),
    ("15", "Jambi"),
    ("16", "Sumatera Selatan"),
    ("17", "Bengkulu"),
    ("18", "Lampung"),
    ("19", "Kepulauan Bangka Belitung"),
    ("21", "Kepulauan Riau"),
    ("31", "DKI Jakarta"),
    ("32", "Jawa Barat"),
    ("33", "Jawa Tengah"),
    ("34", "DI Yogyakarta"),
    ("35", "Jawa Timur"),
    ("36", "Banten"),
    ("51", "Bali"),
    ("52", "Nusa Tenggara Barat"),
    ("53", "Nusa Tenggara Timur"),
    ("61", "Kalimantan Barat"),
    ("62", "Kalimantan Tengah"),
    ("63", "Kalimantan Selatan"),
    ("64", "Kalimantan Timur"),
    ("65", "Kalimantan Utara"),
    ("71", "Sulawesi Utara"),
    ("72", "Sulawesi Tengah"),
    ("73", "Sulawesi Selatan"),
    ("74", "Sulawesi Tenggara"),
    ("75", "Gorontalo"),
    ("76", "Sulawesi Barat"),
    ("81", "Maluku"),
    ("82", "Maluku Utara"),
    ("91", "Papua Barat"),
    ("92", "Papua Barat Daya"),
    ("94", "Papua"),
    ("95", "Papua Selatan"),
    ("96", "Papua Tengah"),
    ("97", "Papua Pegunungan"),
];

const MINISTRIES: [&str; 25] = [
    "Kementerian Dalam Negeri",
    "Kementerian Hukum",
    "Kementerian Imigrasi dan Pemasyarakatan",
    "Kementerian Keuangan",
    "Kementerian Agama",
    "Kementerian Kesehatan",
    "Kementerian Pendidikan Dasar dan Menengah",
    "Kementerian Sosial",
    "Kementerian Ketenagakerjaan",
    "Kementerian Perhubungan",
    "Kementerian Agraria dan Tata Ruang/Badan Pertanahan Nasional",
    "Kementerian Perindustrian",
    "Kementerian Perdagangan",
    "Kementerian Pertanian",
    "Kementerian Kelautan dan Perikanan",
    "Kementerian Lingkungan Hidup",
    "Kementerian Energi dan Sumber Daya Mineral",
    "Kementerian Pekerjaan Umum",
    "Kementerian Perumahan dan Kawasan Permukiman",
    "Kementerian Komunikasi dan Digital",
    "Kementerian Investasi dan Hilirisasi/BKPM",
    "Kementerian Koperasi",
    "Kementerian Usaha Mikro, Kecil, dan Menengah",
    "Kementerian Pariwisata",
    "Kementerian Desa dan Pembangunan Daerah Tertinggal",
];

const AGENCIES: [&str; 14] = [
    "Badan Pengawas Obat dan Makanan",
    "Badan Kepegawaian Negara",
    "Badan Pusat Statistik",
    "Badan Meteorologi, Klimatologi, dan Geofisika",
    "Badan Nasional Penanggulangan Bencana",
    "Badan Narkotika Nasional",
    "Badan Pelindungan Pekerja Migran Indonesia",
    "Badan Karantina Indonesia",
    "Badan Gizi Nasional",
    "Badan Standardisasi Nasional",
    "Badan Pengawas Tenaga Nuklir",
    "Badan Informasi Geospasial",
    "Badan Riset dan Inovasi Nasional",
    "Badan Siber dan Sandi Negara",
];

/// Roots and qualifiers of synthetic city and regency names.
const PLACES: [&str; 40] = [
    "Sungai Raya",
    "Tanah Merah",
    "Batu Putih",
    "Muara Enim",
    "Air Itam",
    "Bukit Tinggi",
    "Padang Lawas",
    "Kota Baru",
    "Tanjung Harapan",
    "Lubuk Linggau",
    "Sekadau",
    "Kapuas",
    "Barito",
    "Mamuju",
    "Luwu",
    "Bone Bolango",
    "Halmahera",
    "Seram",
    "Sumba",
    "Manggarai",
    "Lombok",
    "Sambas",
    "Kepahiang",
    "Rejang",
    "Ogan",
    "Musi",
    "Banyu Asin",
    "Pesisir",
    "Tulang Bawang",
    "Way Kanan",
    "Gunung Mas",
    "Kutai",
    "Paser",
    "Bulungan",
    "Minahasa",
    "Bolaang",
    "Poso",
    "Banggai",
    "Konawe",
    "Wakatobi",
];
const QUALIFIERS: [&str; 6] = ["", " Utara", " Selatan", " Barat", " Timur", " Tengah"];

/// Units of a local government: (name, kind); the first two are always sampled.
const LOCAL_UNITS: [(&str, &str); 10] = [
    ("Dinas Kependudukan dan Pencatatan Sipil", "dukcapil"),
    (
        "Dinas Penanaman Modal dan Pelayanan Terpadu Satu Pintu",
        "dpmptsp",
    ),
    ("Dinas Kesehatan", "kesehatan"),
    ("Dinas Pendidikan dan Kebudayaan", "pendidikan"),
    ("Dinas Sosial", "sosial"),
    ("Rumah Sakit Umum Daerah", "rsud"),
    ("Dinas Perhubungan", "perhubungan"),
    ("Badan Pendapatan Daerah", "pendapatan"),
    ("Dinas Tenaga Kerja dan Transmigrasi", "tenaga_kerja"),
    ("Puskesmas", "puskesmas"),
];

/// Service offices of a ministry or agency (followed by a place).
const CENTRAL_UNITS: [&str; 8] = [
    "Unit Layanan Terpadu",
    "Kantor Wilayah",
    "Kantor Pelayanan",
    "Balai Besar",
    "Pusat Layanan Informasi dan Pengaduan",
    "Loka Pelayanan",
    "Kantor Perwakilan",
    "Balai Pelayanan Publik",
];

/// How big the dataset is.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub provinces: usize,
    pub ministries: usize,
    pub agencies: usize,
    pub cities: usize,
    pub regencies: usize,
    pub units_per_entity: (u64, u64),
    pub respondents: (u64, u64),
}

impl Shape {
    /// Indonesia: ≈ 590 entities, ≈ 3,800 units, ≈ 100,000 survey responses.
    pub const NATIONAL: Shape = Shape {
        provinces: 38,
        ministries: 25,
        agencies: 14,
        cities: 98,
        regencies: 415,
        units_per_entity: (5, 8),
        respondents: (20, 32),
    };
    /// The same country with `factor` times the units per entity.
    pub const fn scaled(self, factor: u64) -> Shape {
        Shape {
            units_per_entity: (
                self.units_per_entity.0 * factor,
                self.units_per_entity.1 * factor,
            ),
            ..self
        }
    }

    /// A few seconds' worth, for the smoke test.
    pub const SMOKE: Shape = Shape {
        provinces: 2,
        ministries: 1,
        agencies: 1,
        cities: 2,
        regencies: 3,
        units_per_entity: (2, 3),
        respondents: (3, 5),
    };
}

/// An assessor: a name (unique) and the province whose office they work for (`None`: HQ).
pub struct Assessor {
    pub name: String,
    pub province: Option<String>,
}

/// An entity with its sampled units.
pub struct Entity {
    pub code: String,
    pub kind: &'static str,
    pub name: String,
    pub province: Option<String>,
    pub units: Vec<Unit>,
}

/// A unit with its inputs.
pub struct Unit {
    pub name: String,
    pub kind: String,
    /// What its values, survey answers and earlier scores are drawn around.
    pub quality: Quality,
    /// Who enters its values (an index into [`Dataset::assessors`]).
    pub assessor: usize,
    /// Per indicator (in the methodology's order): the value entered.
    pub answers: Vec<AnswerInput>,
    /// Per indicator: whether the value comes with an evidence note.
    pub evidence: Vec<bool>,
    /// `(survey code, responses)`.
    pub surveys: Vec<(String, Vec<Value>)>,
    /// Points taken off its score of the previous cycle (the planted year-on-year jump), in
    /// hundredths.
    pub previous_drop: u64,
}

impl Unit {
    /// `{ "indicator", "value" | "not_applicable", "evidence_note" }` objects, as uploaded.
    pub fn values(&self, m: &Methodology) -> Vec<Value> {
        m.indicator_ids()
            .zip(self.answers.iter().zip(&self.evidence))
            .map(|(id, (answer, evidence))| {
                let code = &m.indicator(id).code;
                match answer {
                    AnswerInput::Value(value) if *evidence => {
                        json!({ "indicator": code, "value": value, "evidence_note": EVIDENCE_NOTE })
                    }
                    AnswerInput::Value(value) => json!({ "indicator": code, "value": value }),
                    AnswerInput::NotApplicable => {
                        json!({ "indicator": code, "not_applicable": true, "evidence_note": "Layanan tidak tersedia di unit ini" })
                    }
                }
            })
            .collect()
    }

    /// Whether the value of indicator `id` is the top level of its scale.
    pub fn at_top(&self, m: &Methodology, id: IndicatorId) -> bool {
        let top = m.indicator(id).scale.levels.last().map(|l| l.value);
        matches!(self.answers[id.index()], AnswerInput::Value(v) if Some(v) == top)
    }

    /// Draws its survey responses again (after its values or quality changed).
    pub fn redraw_surveys(&mut self, m: &Methodology, rng: &mut Rng, range: (u64, u64)) {
        self.surveys = surveys(m, rng, self, range);
    }
}

/// The whole dataset.
pub struct Dataset {
    pub provinces: Vec<(String, String)>,
    pub entities: Vec<Entity>,
    pub assessors: Vec<Assessor>,
    /// How many respondents each unit's surveys have (a range).
    pub respondents: (u64, u64),
}

fn place(i: usize) -> String {
    let root = PLACES[i % PLACES.len()];
    let q = QUALIFIERS[(i / PLACES.len()) % QUALIFIERS.len()];
    let n = i / (PLACES.len() * QUALIFIERS.len());
    if n == 0 {
        format!("{root}{q}")
    } else {
        format!(
            "{root}{q} {}",
            ["Raya", "Hulu", "Hilir", "Ilir", "Kepulauan"][n % 5]
        )
    }
}

/// The `k`-th unit of entity number `e` (named `name`, of `kind`): its name and kind.
fn unit_name(kind: &str, name: &str, e: usize, k: usize) -> (String, String) {
    match kind {
        "ministry" | "agency" => (
            format!(
                "{} {} {}",
                CENTRAL_UNITS[(e + k) % CENTRAL_UNITS.len()],
                name.split(' ').next_back().unwrap_or_default(),
                PROVINCES[(e * 3 + k * 5) % PROVINCES.len()].1
            ),
            "layanan".to_owned(),
        ),
        _ => {
            let (n, kind) = LOCAL_UNITS[k % LOCAL_UNITS.len()];
            let short = name.trim_start_matches("Pemerintah ");
            let full = match kind {
                "rsud" | "puskesmas" => format!("{n} {}", place(e * 11 + k)),
                // Long official names (80+ characters) occur; certificates wrap them.
                "dpmptsp" => format!("{n} {short}"),
                _ => n.to_owned(),
            };
            (full, kind.to_owned())
        }
    }
}

/// Generates the dataset for `m` (the 2022–2024 methodology).
pub fn generate(m: &Methodology, shape: Shape, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let provinces: Vec<(String, String)> = PROVINCES
        .iter()
        .take(shape.provinces)
        .map(|(c, n)| ((*c).to_owned(), (*n).to_owned()))
        .collect();
    let mut entities = Vec::new();
    for (i, name) in MINISTRIES.iter().take(shape.ministries).enumerate() {
        entities.push((
            format!("K{:02}", i + 1),
            "ministry",
            (*name).to_owned(),
            None,
        ));
    }
    for (i, name) in AGENCIES.iter().take(shape.agencies).enumerate() {
        entities.push((format!("L{:02}", i + 1), "agency", (*name).to_owned(), None));
    }
    for (code, name) in &provinces {
        entities.push((
            code.clone(),
            "province",
            format!("Pemerintah Provinsi {name}"),
            Some(code.clone()),
        ));
    }
    let per = provinces.len().max(1);
    for i in 0..shape.cities + shape.regencies {
        let (code, _) = &provinces[i % per];
        let (kind, number, label) = if i < shape.cities {
            ("city", 71 + i / per, "Kota")
        } else {
            ("regency", 1 + (i - shape.cities) / per, "Kabupaten")
        };
        entities.push((
            format!("{code}.{number:02}"),
            kind,
            format!("Pemerintah {label} {}", place(i * 7 + 3)),
            Some(code.clone()),
        ));
    }
    let entities = entities
        .into_iter()
        .enumerate()
        .map(|(e, (code, kind, name, province))| {
            let base = Quality::realistic(&mut rng);
            let n =
                usize::try_from(rng.between(shape.units_per_entity.0, shape.units_per_entity.1))
                    .unwrap_or(5);
            // Beyond the usual offices (scaled runs), further units are technical units of a
            // region: "UPT Dinas Kesehatan Wilayah 2". Names stay unique within the entity.
            let mut taken = std::collections::HashSet::new();
            let units = (0..n)
                .map(|k| {
                    let (mut unit_name, unit_kind) = unit_name(kind, &name, e, k);
                    let base_name = unit_name.clone();
                    let mut region = 2;
                    while !taken.insert(unit_name.clone()) {
                        unit_name = format!("UPT {base_name} Wilayah {region}");
                        region += 1;
                    }
                    let quality = Quality(
                        (base.0 + rng.below(120))
                            .saturating_sub(60)
                            .clamp(150, 1000),
                    );
                    let answers: Vec<AnswerInput> = m
                        .indicator_ids()
                        .map(|id| kepatuhan_core::synthetic::answer(m, id, &mut rng, quality))
                        .collect();
                    let mut unit = Unit {
                        name: unit_name,
                        kind: unit_kind,
                        quality,
                        assessor: 0,
                        evidence: vec![true; answers.len()],
                        answers,
                        surveys: Vec::new(),
                        previous_drop: 0,
                    };
                    unit.redraw_surveys(m, &mut rng, shape.respondents);
                    unit
                })
                .collect();
            Entity {
                code,
                kind,
                name,
                province,
                units,
            }
        })
        .collect();
    let mut dataset = Dataset {
        provinces,
        entities,
        assessors: Vec::new(),
        respondents: shape.respondents,
    };
    dataset.deal_to_assessors();
    dataset
}

/// Survey responses around the unit's quality: the share of respondents reporting no
/// maladministration tracks it. A respondent who reports some reports the first question whose
/// linked indicator is not at the top of its scale, and each other such question one time in
/// three; a question whose linked indicator the assessor observed at the top (the fees are
/// published, say) is reported one time in twenty, so observation and survey mostly agree.
fn surveys(
    m: &Methodology,
    rng: &mut Rng,
    unit: &Unit,
    range: (u64, u64),
) -> Vec<(String, Vec<Value>)> {
    let quality = unit.quality;
    m.survey_ids()
        .map(|id| {
            let s = m.survey(id);
            let n = rng.between(range.0, range.1);
            let observed_top: Vec<bool> = s
                .questions
                .iter()
                .map(|q| {
                    m.indicator_ids().any(|i| {
                        unit.at_top(m, i)
                            && m.indicator(i)
                                .survey_questions
                                .iter()
                                .any(|r| r.survey == s.code && r.question == q.code)
                    })
                })
                .collect();
            let lead = observed_top.iter().position(|top| !top).unwrap_or(0);
            let responses = (0..n)
                .map(|r| {
                    let clean = rng.below(1000) < quality.0;
                    let answers: serde_json::Map<String, Value> = s
                        .questions
                        .iter()
                        .enumerate()
                        .map(|(i, q)| {
                            let answer = match &s.method {
                                SurveyMethod::NoMaladministrationShare => {
                                    json!(
                                        !clean
                                            && if observed_top[i] {
                                                rng.below(20) == 0
                                            } else {
                                                i == lead || rng.below(3) == 0
                                            }
                                    )
                                }
                                SurveyMethod::Likert { levels } => {
                                    let top = levels.len() as u64;
                                    json!(
                                        1 + (quality.0 * (top - 1) / 1000 + rng.below(2))
                                            .min(top - 1)
                                    )
                                }
                            };
                            (q.code.clone(), answer)
                        })
                        .collect();
                    json!({ "respondent": format!("R-{r:04}"), "answers": answers })
                })
                .collect();
            (s.code.clone(), responses)
        })
        .collect()
}

/// Where a unit is: (entity index, unit index).
type Place = (usize, usize);

impl Dataset {
    /// Deals each province's units (and HQ's: the ministries' and agencies') to assessors,
    /// [`ASSESSOR_UNITS`] at a time in entity order; the last assessor of a province takes the
    /// remainder when it is small.
    fn deal_to_assessors(&mut self) {
        // (province, its units as (entity index, unit index)), in order of first appearance.
        let mut groups: Vec<(Option<String>, Vec<Place>)> = Vec::new();
        for (e, entity) in self.entities.iter().enumerate() {
            let at = match groups.iter().position(|(p, _)| *p == entity.province) {
                Some(at) => at,
                None => {
                    groups.push((entity.province.clone(), Vec::new()));
                    groups.len() - 1
                }
            };
            groups[at].1.extend((0..entity.units.len()).map(|u| (e, u)));
        }
        for (province, units) in groups {
            let count = (units.len() / ASSESSOR_UNITS).max(1);
            let first = self.assessors.len();
            for k in 0..count {
                self.assessors.push(Assessor {
                    name: format!(
                        "Asesor {} {}",
                        province.as_deref().unwrap_or("Pusat"),
                        k + 1
                    ),
                    province: province.clone(),
                });
            }
            for (i, (e, u)) in units.into_iter().enumerate() {
                self.entities[e].units[u].assessor = first + (i / ASSESSOR_UNITS).min(count - 1);
            }
        }
    }

    /// Units in the dataset.
    pub fn unit_count(&self) -> usize {
        self.entities.iter().map(|e| e.units.len()).sum()
    }

    /// Each unit's published score (in hundredths) of the cycle `years_back` years before the
    /// live one: a little worse the further back, and lowered by the planted drop the year
    /// before.
    pub fn earlier_scores(&self, years_back: u64, seed: u64) -> Vec<Vec<u64>> {
        let mut rng = Rng::new(seed ^ years_back);
        self.entities
            .iter()
            .map(|e| {
                e.units
                    .iter()
                    .map(|u| {
                        let drop = if years_back == 1 { u.previous_drop } else { 0 };
                        (u.quality.0 * 10).saturating_sub(years_back * 300 + rng.below(600) + drop)
                    })
                    .collect()
            })
            .collect()
    }

    /// Published unit scores of an earlier cycle as the import CSV (`entity_code,entity_kind,
    /// entity_name,province_code,unit_name,score`), with a decimal comma on every third row as
    /// offices write them.
    pub fn import_csv(&self, years_back: u64, seed: u64) -> String {
        let scores = self.earlier_scores(years_back, seed);
        let mut out =
            String::from("entity_code,entity_kind,entity_name,province_code,unit_name,score\n");
        let mut row = 0;
        for (e, scores) in self.entities.iter().zip(scores) {
            for (u, hundredths) in e.units.iter().zip(scores) {
                let score = format!("{}.{:02}", hundredths / 100, hundredths % 100);
                let score = if row % 3 == 0 {
                    format!("\"{}\"", score.replace('.', ","))
                } else {
                    score
                };
                let _ = writeln!(
                    out,
                    "{},{},\"{}\",{},\"{}\",{score}",
                    e.code,
                    e.kind,
                    e.name,
                    e.province.as_deref().unwrap_or(""),
                    u.name
                );
                row += 1;
            }
        }
        out
    }

    /// Writes every file the loader sends to the bulk endpoints.
    pub fn write_files(
        &self,
        m: &Methodology,
        dir: &Path,
        seed: u64,
        years: [u16; 3],
    ) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let provinces: Vec<Value> = self
            .provinces
            .iter()
            .map(|(c, n)| json!({ "code": c, "name": n }))
            .collect();
        let offices: Vec<Value> = self
            .provinces
            .iter()
            .map(|(c, n)| json!({ "code": office_code(c), "name": format!("Ombudsman RI Perwakilan {n}"), "provinces": [c] }))
            .collect();
        let entities: Vec<Value> = self
            .entities
            .iter()
            .map(|e| json!({ "code": e.code, "kind": e.kind, "name": e.name, "province_code": e.province }))
            .collect();
        let units: Vec<Value> = self
            .entities
            .iter()
            .flat_map(|e| {
                e.units
                    .iter()
                    .map(move |u| json!({ "entity_code": e.code, "name": u.name, "kind": u.kind }))
            })
            .collect();
        let sample: Vec<Value> = self
            .entities
            .iter()
            .flat_map(|e| {
                e.units
                    .iter()
                    .map(move |u| json!({ "entity_code": e.code, "unit_name": u.name }))
            })
            .collect();
        let write_json = |name: &str, v: &Vec<Value>| {
            std::fs::write(dir.join(name), serde_json::to_vec(v).unwrap_or_default())
        };
        write_json("provinces.json", &provinces)?;
        write_json("offices.json", &offices)?;
        write_json("entities.json", &entities)?;
        write_json("units.json", &units)?;
        write_json("sample.json", &sample)?;
        let assessors: Vec<Value> = self
            .assessors
            .iter()
            .map(|a| json!({ "name": a.name, "office": a.province.as_deref().map(office_code) }))
            .collect();
        write_json("assessors.json", &assessors)?;
        std::fs::write(
            dir.join(format!("import-{}.csv", years[0])),
            self.import_csv(2, seed),
        )?;
        std::fs::write(
            dir.join(format!("import-{}.csv", years[1])),
            self.import_csv(1, seed),
        )?;
        let mut submissions = String::new();
        let mut responses = String::new();
        for e in &self.entities {
            for u in &e.units {
                let _ = writeln!(
                    submissions,
                    "{}",
                    json!({ "entity_code": e.code, "unit_name": u.name, "assessor": self.assessors[u.assessor].name, "values": u.values(m) })
                );
                for (survey, rs) in &u.surveys {
                    let _ = writeln!(
                        responses,
                        "{}",
                        json!({ "entity_code": e.code, "unit_name": u.name, "survey": survey, "responses": rs })
                    );
                }
            }
        }
        std::fs::write(
            dir.join(format!("submissions-{}.jsonl", years[2])),
            submissions,
        )?;
        std::fs::write(
            dir.join(format!("survey-responses-{}.jsonl", years[2])),
            responses,
        )?;
        Ok(())
    }
}

/// A regional office's code from its province's code.
pub fn office_code(province: &str) -> String {
    format!("perwakilan-{province}")
}
