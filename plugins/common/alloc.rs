// Shared by the example plugins (included with `include!`): a bump allocator.
//
// hookd runs every check in a fresh instance and throws the instance away afterwards, so a
// plugin never needs to free memory. Allocations come from a static arena inside the module's
// first memory page; memory grows only if a call needs more than the arena. Compared with the
// default allocator this saves its set-up and a `memory.grow` on every call, and the host has
// fewer dirty pages to reset after it.
#[cfg(target_arch = "wasm32")]
mod bump {
    use core::alloc::{GlobalAlloc, Layout};
    use core::cell::UnsafeCell;

    const ARENA_BYTES: usize = 16 * 1024;
    const WASM_PAGE: usize = 64 * 1024;

    #[repr(C, align(16))]
    struct Arena {
        bytes: UnsafeCell<[u8; ARENA_BYTES]>,
        next: UnsafeCell<usize>,
    }

    // SAFETY: wasm32-unknown-unknown has no threads; the arena is only ever used by one.
    unsafe impl Sync for Arena {}

    static ARENA: Arena = Arena {
        bytes: UnsafeCell::new([0; ARENA_BYTES]),
        next: UnsafeCell::new(0),
    };

    struct Bump;

    // SAFETY: every block handed out is fresh, aligned as asked and never handed out twice.
    unsafe impl GlobalAlloc for Bump {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: single-threaded (see above), so this is the only reference to `next`.
            let next = unsafe { &mut *ARENA.next.get() };
            let base = ARENA.bytes.get().cast::<u8>();
            let start = (base as usize + *next).next_multiple_of(layout.align()) - base as usize;
            if let Some(end) = start.checked_add(layout.size()).filter(|&e| e <= ARENA_BYTES) {
                *next = end;
                // SAFETY: `start..end` lies inside the arena.
                return unsafe { base.add(start) };
            }
            // Beyond the arena: whole fresh pages (page-aligned, enough for any sane alignment).
            let pages = layout.size().div_ceil(WASM_PAGE).max(1);
            match core::arch::wasm32::memory_grow(0, pages) {
                usize::MAX => core::ptr::null_mut(),
                old => (old * WASM_PAGE) as *mut u8,
            }
        }

        unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
    }

    #[global_allocator]
    static GLOBAL: Bump = Bump;
}
