/** Sequence layouts: the joint vocabulary, typed documents, their compiler and parser, presets. */
export * from "./vocab.ts";
export * from "./document.ts";
export * from "./compile.ts";
export * from "./parse.ts";
export * from "./presets.ts";
