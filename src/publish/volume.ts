/** Kept so existing imports of `publish/volume.js` keep working; the implementation is in volume/. */
export * from './volume/index.js';
