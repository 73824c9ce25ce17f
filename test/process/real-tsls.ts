import path from 'node:path';

const REALWORLD = process.env.ZETA_REALWORLD_DIR ?? path.resolve(__dirname, '../../../shared/realworld');

/** The distinct real TSLs in shared/realworld (gematik-test/tsl/ECC_TU_TSL_10691.xml is the first one again). */
export const REAL_TSLS = ['gematik-test/ECC-RSA_TSL-test.xml', 'gematik-popp/ECC-RSA_TSL-test.xml', 'gematik-popp/TSL-valid-ECC-rise-cvc.xml'].map((f) =>
  path.join(REALWORLD, f),
);
