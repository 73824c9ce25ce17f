/** Cabinet reader: header parsing and the Authenticode digest layout (shared by verify and process). */
export * from './header.js';
