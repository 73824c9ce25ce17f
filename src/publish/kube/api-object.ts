/**
 * An object as the Kubernetes API returns it (JSON), before we have checked its shape. Readers of
 * such objects check each field they use (typeof, Array.isArray) rather than trust a declared type.
 */
// biome-ignore lint/suspicious/noExplicitAny: raw API JSON, narrowed field by field where it is read
export type ApiObject = Record<string, any>;
