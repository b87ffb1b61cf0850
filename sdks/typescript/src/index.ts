export * from "./client.js";
export * from "./errors.js";
export * from "./agent.js";
export * from "./routes.js";
export * from "./tools.js";
export type * from "./schema.gen.js";
export { API_VERSION } from "./schema.gen.js";
