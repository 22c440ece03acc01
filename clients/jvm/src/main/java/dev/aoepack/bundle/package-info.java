/**
 * Verifying, decrypting and unpacking {@code .aoe} bundles (docs/format.md
 * §3-§9): {@link dev.aoepack.bundle.BundleVerifier} checks a bundle against
 * trusted signing keys and a threshold and returns a {@link
 * dev.aoepack.bundle.VerifiedBundle}; it also unpacks one into a folder,
 * atomically. Errors are {@link dev.aoepack.AoeException}s whose codes are
 * those of {@code aoe-pack}.
 */
package dev.aoepack.bundle;
