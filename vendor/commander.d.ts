// The types of the bundled commander (vendor/commander.js): those of the npm package whose
// runtime the bundle is.
export * from "npm:@commander-js/extra-typings@14.0.0";
