/**
 * The strict reader of the v1 container (docs/format.md §3, §4) and the entry
 * name rules (§4.7). Internal: not part of the library's API; use {@link
 * dev.aoepack.bundle.BundleVerifier}.
 */
package dev.aoepack.internal.zip;
