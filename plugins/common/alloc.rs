// Shared by the example plugins (included with `include!`): a bump allocator.
//
// hookd runs every call in a fresh instance and throws the instance away afterwards, so a
// plugin never needs to free memory. Allocations come first from a static arena inside the
// module's first memory page (16 KiB: all a URL-policy check needs), so such a plugin never
// grows its memory. Past the arena, the allocator grows memory by at least `MIN_GROW_PAGES`
// pages at a time and bumps on through them; memory only ever grows at its end, so each growth
// extends the region before it and blocks of any size pack tightly (a transformer parsing a
// large payload makes thousands of small allocations). `realloc` grows the most recent block
// in place, so a `Vec` or `String` being built at the top never copies itself. Compared with
// the default allocator this saves its set-up and bookkeeping, and the host has fewer dirty
// pages to reset after a call.
#[cfg(target_arch = "wasm32")]
mod bump {
    use core::alloc::{GlobalAlloc, Layout};
    use core::cell::UnsafeCell;

    const ARENA_BYTES: usize = 16 * 1024;
    const WASM_PAGE: usize = 64 * 1024;
    /// Memory grows by at least this many pages (256 KiB) at a time.
    const MIN_GROW_PAGES: usize = 4;

    #[repr(C, align(16))]
    struct Arena {
        bytes: UnsafeCell<[u8; ARENA_BYTES]>,
        heap: UnsafeCell<Heap>,
    }

    /// The free region `next..end` (addresses); both 0 until the first allocation.
    struct Heap {
        next: usize,
        end: usize,
    }

    // SAFETY: wasm32-unknown-unknown has no threads; the arena is only ever used by one.
    unsafe impl Sync for Arena {}

    static ARENA: Arena = Arena {
        bytes: UnsafeCell::new([0; ARENA_BYTES]),
        heap: UnsafeCell::new(Heap { next: 0, end: 0 }),
    };

    impl Heap {
        /// The heap, starting on the arena.
        ///
        /// # Safety
        /// Single-threaded (see above), and the caller holds no other reference to it.
        unsafe fn get() -> &'static mut Heap {
            // SAFETY: as the caller promises, this is the only reference to the heap.
            let heap = unsafe { &mut *ARENA.heap.get() };
            if heap.end == 0 {
                heap.next = ARENA.bytes.get() as usize;
                heap.end = heap.next + ARENA_BYTES;
            }
            heap
        }

        /// A block for `layout` from the free region, growing memory as needed; null when
        /// memory cannot grow (any more, or that much).
        fn alloc(&mut self, layout: Layout) -> *mut u8 {
            loop {
                let Some(start) = self.next.checked_next_multiple_of(layout.align()) else {
                    return core::ptr::null_mut();
                };
                let Some(end) = start.checked_add(layout.size()) else {
                    return core::ptr::null_mut();
                };
                if end <= self.end {
                    self.next = end;
                    return start as *mut u8;
                }
                // Enough if the growth extends this region; if it starts a new one (the first
                // growth past the arena), the next turn grows again as far as needed.
                if !self.grow(end - self.end) {
                    return core::ptr::null_mut();
                }
            }
        }

        /// Grows memory by `bytes` or more (whole pages, at least `MIN_GROW_PAGES`). The free
        /// region then ends at the new end of memory; it starts where it did when the new pages
        /// extend it, else (past the arena) at the first new page. False if memory can't grow.
        fn grow(&mut self, bytes: usize) -> bool {
            let pages = bytes.div_ceil(WASM_PAGE).max(MIN_GROW_PAGES);
            let old_pages = core::arch::wasm32::memory_grow(0, pages);
            if old_pages == usize::MAX {
                return false;
            }
            let base = old_pages * WASM_PAGE;
            if base != self.end {
                // What is left of the old region stays unused.
                self.next = base;
            }
            self.end = base.saturating_add(pages.saturating_mul(WASM_PAGE));
            true
        }
    }

    struct Bump;

    // SAFETY: every block handed out is fresh, aligned as asked and never handed out twice;
    // `realloc` keeps a block in place only while nothing lies after it.
    unsafe impl GlobalAlloc for Bump {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: no other reference to the heap is live during this call.
            unsafe { Heap::get() }.alloc(layout)
        }

        unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: no other reference to the heap is live during this call.
            let heap = unsafe { Heap::get() };
            let start = ptr as usize;
            let old_end = start + layout.size();
            if new_size <= layout.size() {
                // Shrinking: the block stays where it is (and gives back its tail if on top).
                if old_end == heap.next {
                    heap.next = start + new_size;
                }
                return ptr;
            }
            if old_end == heap.next {
                // The most recent block: grow it in place if the free region (extended if need
                // be) has room right after it.
                let Some(new_end) = start.checked_add(new_size) else {
                    return core::ptr::null_mut();
                };
                if new_end > heap.end && !heap.grow(new_end - heap.end) {
                    return core::ptr::null_mut();
                }
                if heap.next == old_end && new_end <= heap.end {
                    heap.next = new_end;
                    return ptr;
                }
            }
            // SAFETY: `new_size` is non-zero and, rounded up to the alignment, no larger than
            // `isize::MAX` (the caller's promise), and the alignment is `layout`'s, a valid one.
            let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
            let new = heap.alloc(new_layout);
            if !new.is_null() {
                // SAFETY: both blocks are valid for the old size (the new one is larger) and
                // the new one is fresh, so they don't overlap.
                unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size()) };
            }
            new
        }
    }

    #[global_allocator]
    static GLOBAL: Bump = Bump;
}
