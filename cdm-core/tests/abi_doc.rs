//! `docs/abi.md` is the specification a C programmer implements from: its opcode and status
//! tables must list exactly the operations and statuses of the code, with the same values, in
//! the same order.

use cdm_core::abi::{Opcode, Status};

const ABI_MD: &str = include_str!("../../docs/abi.md");

/// `(value, name)` of every table row of the section headed `heading` whose first cell is a
/// hex code in backticks.
fn rows(heading: &str) -> Vec<(u32, String)> {
    let start = ABI_MD
        .find(heading)
        .unwrap_or_else(|| panic!("docs/abi.md has no section {heading:?}"));
    let section = &ABI_MD[start + heading.len()..];
    let end = section.find("\n## ").unwrap_or(section.len());
    section[..end]
        .lines()
        .filter_map(|line| {
            let mut cells = line.split('|').map(str::trim).skip(1);
            let code = cells.next()?.strip_prefix("`0x")?.strip_suffix('`')?;
            let name = cells.next()?;
            Some((u32::from_str_radix(code, 16).unwrap(), name.to_string()))
        })
        .collect()
}

#[test]
fn opcode_table_matches_the_code() {
    let code: Vec<(u32, String)> = Opcode::ALL
        .iter()
        .map(|op| (u32::from(op.to_wire()), op.name().to_string()))
        .collect();
    assert_eq!(rows("## 4. Opcodes"), code);
}

#[test]
fn status_table_matches_the_code() {
    let code: Vec<(u32, String)> = Status::ALL
        .iter()
        .map(|s| (s.to_wire(), s.name().to_string()))
        .collect();
    assert_eq!(rows("## 5. Status codes"), code);
}
