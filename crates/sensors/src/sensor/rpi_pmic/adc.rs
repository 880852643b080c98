//! What `vcgencmd pmic_read_adc` prints, read into numbers.
//!
//! The Raspberry Pi 5's PMIC (Renesas DA9091) measures each rail's current and voltage; the
//! firmware prints one value a line. Current firmware writes the ADC channel beside the name,
//! older firmware did not:
//!
//! ```text
//!    VDD_CORE_A current(7)=2.12345600A        VDD_CORE_A=2.123A
//!    VDD_CORE_V volt(15)=0.80123400V          VDD_CORE_V=0.801V
//! ```
//!
//! A rail is a name with both a current (`NAME_A`) and a voltage (`NAME_V`). `EXT5V_V`, the
//! 5 V input, has a voltage and no current, so it is no rail: nothing here measures what the
//! board draws at its input, only the SoC-side rails the PMIC feeds.
//!
//! Anything else is refused with the line quoted: a format this parser does not know could
//! carry other units or other names, and guessing would put wrong watts in a run.

use std::fmt;

/// One value the PMIC printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    Current,
    Voltage,
}

/// The values of one `pmic_read_adc`, in the order printed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Adc {
    /// `(name without _A, amperes)`.
    pub currents: Vec<(String, f64)>,
    /// `(name without _V, volts)`.
    pub voltages: Vec<(String, f64)>,
}

/// One rail: its current and voltage, and their product.
#[derive(Debug, Clone, PartialEq)]
pub struct Rail {
    pub name: String,
    pub amps: f64,
    pub volts: f64,
}

impl Rail {
    pub fn watts(&self) -> f64 {
        self.amps * self.volts
    }
}

/// Output that is not what `pmic_read_adc` prints.
#[derive(Debug, Clone, PartialEq)]
pub enum ParseError {
    /// A line in neither format (quoted, trimmed).
    Line(String),
    /// A name printed twice.
    Repeated(String),
    /// Not one current and voltage pair.
    NoRails { lines: usize },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Line(line) => write!(
                f,
                "vcgencmd pmic_read_adc printed {line:?}, which is not a reading joulebench \
                 knows (\"VDD_CORE_A current(7)=2.12345600A\" or \"VDD_CORE_A=2.123A\")"
            ),
            ParseError::Repeated(name) => write!(
                f,
                "vcgencmd pmic_read_adc printed {name} twice: which is the reading?"
            ),
            ParseError::NoRails { lines } => write!(
                f,
                "vcgencmd pmic_read_adc printed {lines} readings and no rail with both a current \
                 (NAME_A) and a voltage (NAME_V): is this a Raspberry Pi 5?"
            ),
        }
    }
}

impl std::error::Error for ParseError {}

/// Reads the whole output; blank lines are skipped.
pub fn parse(text: &str) -> Result<Adc, ParseError> {
    let mut adc = Adc::default();
    let mut lines = 0;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        lines += 1;
        let (name, quantity, value) =
            parse_line(line).ok_or_else(|| ParseError::Line(line.to_string()))?;
        let list = match quantity {
            Quantity::Current => &mut adc.currents,
            Quantity::Voltage => &mut adc.voltages,
        };
        if list.iter().any(|(n, _)| *n == name) {
            let suffix = if quantity == Quantity::Current {
                "A"
            } else {
                "V"
            };
            return Err(ParseError::Repeated(format!("{name}_{suffix}")));
        }
        list.push((name, value));
    }
    if adc.rails().is_empty() {
        return Err(ParseError::NoRails { lines });
    }
    Ok(adc)
}

/// `NAME_A current(N)=xA`, `NAME_V volt(N)=xV`, `NAME_A=xA` or `NAME_V=xV`: the name without
/// its suffix, what it is, and the value.
fn parse_line(line: &str) -> Option<(String, Quantity, f64)> {
    let (left, right) = line.split_once('=')?;
    let (name, channel) = match left.split_once(' ') {
        Some((name, channel)) => (name, Some(channel.trim())),
        None => (left, None),
    };
    let (base, quantity) = if let Some(base) = name.strip_suffix("_A") {
        (base, Quantity::Current)
    } else if let Some(base) = name.strip_suffix("_V") {
        (base, Quantity::Voltage)
    } else {
        return None;
    };
    let plain_name =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !plain_name(base) {
        return None;
    }
    if let Some(channel) = channel {
        let word = match quantity {
            Quantity::Current => "current",
            Quantity::Voltage => "volt",
        };
        let number = channel
            .strip_prefix(word)?
            .strip_prefix('(')?
            .strip_suffix(')')?;
        if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
    }
    let unit = match quantity {
        Quantity::Current => 'A',
        Quantity::Voltage => 'V',
    };
    let number = right.strip_suffix(unit)?;
    // Only a plain decimal: "inf", "NaN" or "1e3" are no ADC's output.
    if number.is_empty()
        || !number
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
    {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    Some((base.to_string(), quantity, value))
}

impl Adc {
    /// Every name with both a current and a voltage, in the order the currents came.
    pub fn rails(&self) -> Vec<Rail> {
        self.currents
            .iter()
            .filter_map(|(name, amps)| {
                let volts = self.voltages.iter().find(|(n, _)| n == name)?.1;
                Some(Rail {
                    name: name.clone(),
                    amps: *amps,
                    volts,
                })
            })
            .collect()
    }

    /// The 5 V input's voltage (`EXT5V_V`), where printed: the PMIC has no current for it.
    pub fn input_volts(&self) -> Option<f64> {
        self.voltages
            .iter()
            .find(|(n, _)| n == "EXT5V")
            .map(|(_, v)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As a Pi 5 with 2024 firmware prints it (values shortened to four rails).
    pub const CURRENT_FIRMWARE: &str = "     3V7_WL_SW_A current(0)=0.00390372A
   3V3_SYS_A current(1)=0.05660370A
   VDD_CORE_A current(7)=2.12345600A
   3V7_WL_SW_V volt(8)=3.74963000V
   3V3_SYS_V volt(9)=3.31279200V
   VDD_CORE_V volt(15)=0.80123400V
   EXT5V_V volt(24)=5.12904000V
   BATT_V volt(25)=0.00000000V
";

    const OLDER_FIRMWARE: &str = "VDD_CORE_A=2.123A\nVDD_CORE_V=0.801V\n\nEXT5V_V=5.100V\n";

    #[test]
    fn both_formats_pair_currents_with_voltages() {
        let adc = parse(CURRENT_FIRMWARE).unwrap();
        let rails = adc.rails();
        let names: Vec<&str> = rails.iter().map(|r| r.name.as_str()).collect();
        // EXT5V and BATT have a voltage and no current: no rails.
        assert_eq!(names, ["3V7_WL_SW", "3V3_SYS", "VDD_CORE"]);
        let core = &rails[2];
        assert_eq!((core.amps, core.volts), (2.123456, 0.801234));
        assert!((core.watts() - 2.123456 * 0.801234).abs() < 1e-15);
        assert_eq!(adc.input_volts(), Some(5.12904));

        let old = parse(OLDER_FIRMWARE).unwrap();
        assert_eq!(
            old.rails(),
            [Rail {
                name: "VDD_CORE".into(),
                amps: 2.123,
                volts: 0.801
            }]
        );
        assert_eq!(old.input_volts(), Some(5.1));
    }

    #[test]
    fn anything_else_is_refused_quoting_the_line() {
        for line in [
            "VDD_CORE_A current(7)=2.1mA",
            "VDD_CORE_A volt(7)=2.1A",
            "VDD_CORE_A current(x)=2.1A",
            "VDD_CORE_W=2.1W",
            "VDD_CORE_A=2.1V",
            "VDD_CORE_A=inf A",
            "VDD_CORE_A=NaNA",
            "VDD CORE_A=1A",
            "_A=1A",
            "error=2 error_msg=\"Command not registered\"",
            "pmic_read_adc: unknown command",
        ] {
            let text = format!("VDD_CORE_V=0.8V\n  {line}  \n");
            let e = parse(&text).unwrap_err();
            assert_eq!(e, ParseError::Line(line.into()), "{line}");
            let message = e.to_string();
            assert!(
                !message.contains('\n') && message.contains(&format!("{line:?}")),
                "{message}"
            );
        }
        assert_eq!(
            parse("VDD_CORE_A=1A\nVDD_CORE_A=2A\n").unwrap_err(),
            ParseError::Repeated("VDD_CORE_A".into())
        );
        assert_eq!(
            parse("EXT5V_V=5.1V\n").unwrap_err().to_string(),
            "vcgencmd pmic_read_adc printed 1 readings and no rail with both a current (NAME_A) \
             and a voltage (NAME_V): is this a Raspberry Pi 5?"
        );
        assert!(matches!(
            parse("").unwrap_err(),
            ParseError::NoRails { lines: 0 }
        ));
    }
}
