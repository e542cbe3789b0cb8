//! Module variables at restart: the driver places them, crac checks where it put them.
//!
//! Allocations are placed by crac (mapped at addresses it chooses in the reserved window), but
//! a module's `__device__` and `__constant__` variables are placed by the driver when
//! `cuModuleLoadData` loads the module, and no driver call puts them at a given address. What
//! makes the driver's choice repeat at restart:
//!
//! - the same driver version on the same GPU model: the driver's own allocator decides;
//! - the same address space before each load: the device window is reserved at start-up in both
//!   runs, before anything else, so the driver never puts a variable inside it; replay maps
//!   every allocation back into the window before it loads any module, and those mappings take
//!   no address outside it, so allocations first (as they must be, to get their own addresses
//!   back) leaves the driver the same room for variables as the original run had;
//! - the same driver-side allocations before each load: replay loads the modules in their
//!   original load order, each with its variables looked up in the order the program first
//!   looked them up (with CUDA's lazy loading a lookup can be what makes the driver place one).
//!
//! Other driver-internal allocations of the original run (kernel code loaded lazily, per-launch
//! local memory, a module unloaded between two loads) are not replayed, so this is likely,
//! not certain. crac therefore verifies instead of assuming: [`verify`] compares each address
//! the driver gave with the saved one, and any difference fails the restart with both
//! addresses named (the program holds the old address: going on would corrupt it).

use crate::{GpuError, VariablePlacement};

/// What the driver answered for one variable (`cuModuleGetGlobal`): its address and size.
pub(super) type Lookup = Result<(u64, u64), GpuError>;

/// A variable where the checkpoint had it, as the backend records it: (name, address, size,
/// constant). The driver does not say which state space a variable is in, so `constant` is
/// `false`, as for variables looked up in the original run.
pub(super) type Placed = (String, u64, u64, bool);

/// Looks every wanted variable up with `lookup` (the driver's `cuModuleGetGlobal`), in order,
/// and checks each address against the saved one. Every variable at its saved address gives
/// the list to record; otherwise the error names the first variable the driver did not place
/// there (and how many others it moved). A variable the driver cannot find stops the check.
pub(super) fn verify(
    wanted: &[VariablePlacement],
    mut lookup: impl FnMut(&str) -> Lookup,
) -> Result<Vec<Placed>, GpuError> {
    let mut placed = Vec::with_capacity(wanted.len());
    let mut moved: Vec<(&str, u64, u64)> = Vec::new();
    for w in wanted {
        match lookup(&w.name) {
            Ok((ptr, size)) if ptr == w.ptr.0 => placed.push((w.name.clone(), ptr, size, false)),
            Ok((ptr, _)) => moved.push((&w.name, w.ptr.0, ptr)),
            Err(e) => {
                return Err(GpuError::InvalidSymbol(format!(
                    "{} (saved at {:#x}): the CUDA driver cannot find it in the module loaded \
                     again ({e}); the fat binary read back from the program's memory is not \
                     the one loaded before the checkpoint",
                    w.name, w.ptr.0
                )));
            }
        }
    }
    let Some((name, saved, got)) = moved.first() else {
        return Ok(placed);
    };
    let others = match moved.len() - 1 {
        0 => String::new(),
        1 => " (and 1 other variable of this module)".to_string(),
        n => format!(" (and {n} other variables of this module)"),
    };
    Err(GpuError::NotSupported(format!(
        "the CUDA driver placed module variable {name} at {got:#x}, but the checkpointed program \
         has it at {saved:#x}{others}; the driver chooses these addresses itself, and chooses the \
         same ones only with the same driver version, the same GPU model and the same driver \
         work before the module loads (crac loads modules again in their original order), so \
         restart this image on the machine and driver it was taken on"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DevicePtr;

    fn want(name: &str, ptr: u64) -> VariablePlacement {
        VariablePlacement {
            name: name.into(),
            ptr: DevicePtr(ptr),
        }
    }

    /// A driver that answers from a table, and the names it was asked, in order.
    fn driver(
        table: &[(&str, u64, u64)],
    ) -> (
        impl FnMut(&str) -> Lookup,
        std::rc::Rc<std::cell::RefCell<Vec<String>>>,
    ) {
        let asked = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let log = asked.clone();
        let table: Vec<(String, u64, u64)> = table
            .iter()
            .map(|(n, p, s)| ((*n).to_string(), *p, *s))
            .collect();
        let lookup = move |name: &str| {
            log.borrow_mut().push(name.to_string());
            table
                .iter()
                .find(|(n, ..)| n == name)
                .map(|(_, p, s)| (*p, *s))
                .ok_or_else(|| GpuError::InvalidSymbol("cuModuleGetGlobal (CUresult 500)".into()))
        };
        (lookup, asked)
    }

    #[test]
    fn every_variable_at_its_saved_address_is_recorded_in_the_saved_order() {
        let wanted = [
            want("table", 0x7f00_0000_1200),
            want("counter", 0x7f00_0000_1000),
        ];
        let (lookup, asked) = driver(&[
            ("counter", 0x7f00_0000_1000, 4),
            ("table", 0x7f00_0000_1200, 1024),
        ]);
        let placed = verify(&wanted, lookup).expect("same addresses");
        assert_eq!(
            placed,
            [
                ("table".to_string(), 0x7f00_0000_1200, 1024, false),
                ("counter".to_string(), 0x7f00_0000_1000, 4, false),
            ]
        );
        assert_eq!(
            *asked.borrow(),
            ["table", "counter"],
            "looked up in the saved order"
        );
        let (lookup, asked) = driver(&[]);
        assert_eq!(
            verify(&[], lookup),
            Ok(Vec::new()),
            "a module without variables"
        );
        assert!(asked.borrow().is_empty());
    }

    #[test]
    fn a_variable_the_driver_put_elsewhere_fails_naming_it_and_both_addresses() {
        let wanted = [
            want("ok", 0x1000),
            want("counter", 0x7f00_0000_1000),
            want("table", 0x7f00_0000_1200),
        ];
        let (lookup, asked) = driver(&[
            ("ok", 0x1000, 8),
            ("counter", 0x7f00_0020_1000, 4),
            ("table", 0x7f00_0000_1200, 64),
        ]);
        let e = verify(&wanted, lookup).expect_err("moved");
        assert!(matches!(e, GpuError::NotSupported(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            "not supported: the CUDA driver placed module variable counter at 0x7f0000201000, \
             but the checkpointed program has it at 0x7f0000001000; the driver chooses these \
             addresses itself, and chooses the same ones only with the same driver version, the \
             same GPU model and the same driver work before the module loads (crac loads modules \
             again in their original order), so restart this image on the machine and driver it \
             was taken on"
        );
        assert_eq!(asked.borrow().len(), 3, "every variable is looked up");
    }

    #[test]
    fn the_error_counts_the_other_variables_the_driver_moved() {
        let wanted = [want("a", 0x100), want("b", 0x200), want("c", 0x300)];
        let table = [("a", 0x900, 4), ("b", 0xa00, 4), ("c", 0xb00, 4)];
        let one = verify(&wanted[..2], driver(&table).0).expect_err("moved");
        assert!(
            one.to_string().contains(
                "variable a at 0x900, but the checkpointed program has it at 0x100 (and 1 other \
                 variable of this module);"
            ),
            "{one}"
        );
        let two = verify(&wanted, driver(&table).0).expect_err("moved");
        assert!(
            two.to_string()
                .contains("at 0x100 (and 2 other variables of this module);"),
            "{two}"
        );
    }

    #[test]
    fn a_variable_the_driver_cannot_find_is_an_invalid_symbol_naming_it() {
        let wanted = [want("counter", 0x7f00_0000_1000), want("after", 0x2000)];
        let (lookup, asked) = driver(&[("after", 0x2000, 4)]);
        let e = verify(&wanted, lookup).expect_err("missing");
        assert!(matches!(e, GpuError::InvalidSymbol(_)), "{e:?}");
        let text = e.to_string();
        assert!(
            text.starts_with("invalid device symbol counter (saved at 0x7f0000001000): "),
            "{text}"
        );
        assert!(
            text.contains("(invalid device symbol cuModuleGetGlobal (CUresult 500))"),
            "{text}"
        );
        assert_eq!(*asked.borrow(), ["counter"], "the check stops there");
    }
}
