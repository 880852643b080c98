//! `Rig::parse` on arbitrary UTF-8: it must return Ok or an error, never panic. Seed the
//! corpus with the committed rigs: `cp ../rigs/*.toml corpus/rig_parser/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(rig) = joulebench::rig::Rig::parse(text) {
        // What parses must also survive the rest of what the CLI does with a rig's text.
        let _ = toml::to_string(&rig);
    }
});
