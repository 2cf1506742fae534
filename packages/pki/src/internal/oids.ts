/**
 * Object identifiers shared by certificate generation and the HELLO check; kept apart from the pkijs code so that
 * the beacon's HELLO check loads no certificate-building library.
 */

/** Extended key usage purposes (RFC 5280, section 4.2.1.12). */
export const purposes = {
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2"
} as const
