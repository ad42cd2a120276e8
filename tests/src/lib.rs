//! The integration test harness: a private pcscd with vpcd, emulators and PC/SC clients.
