//! The one i2c-dev ioctl the `i2cdev` crate does not wrap: I2C_FUNCS, what an adapter offers.
//! This crate's only unsafe I2C code.

use std::io;
use std::os::fd::RawFd;

use libc::c_ulong;

/// I2C_FUNCS, include/uapi/linux/i2c-dev.h: "Get the adapter functionality mask".
const I2C_FUNCS: libc::Ioctl = 0x0705;

/// The functionality mask of the adapter behind the i2c-dev file `fd`.
pub(super) fn functionality(fd: RawFd) -> io::Result<c_ulong> {
    let mut funcs: c_ulong = 0;
    // SAFETY: `fd` is a file `I2cdev::new` opened and set up with i2c-dev's I2C_SLAVE and
    // I2C_PEC ioctls, and it stays open for the call. i2c-dev answers I2C_FUNCS with
    // `put_user(funcs, (unsigned long __user *)arg)`: one unsigned long written through the
    // pointer, which points at `funcs`, a live local of that type; nothing else is touched.
    let rc = unsafe { libc::ioctl(fd, I2C_FUNCS, &mut funcs as *mut c_ulong) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(funcs)
}
