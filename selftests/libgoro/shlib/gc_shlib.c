// SPDX-License-Identifier: MIT
/*
 * gc_shlib: a shared object with a global that holds a GC pointer, for
 * gc_basic.shared_library_global (dlopen'd after the runtime started,
 * so its data segment is one the collector was not tracking).
 */
void *gc_shlib_slot;
