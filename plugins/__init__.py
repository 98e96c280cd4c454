"""The plugin contract: pluggy hook specifications, the plugin manager, entry-point loading and the
catalogue of known base models. Implementations live in `backends/` (built-ins) or in any installed
package that declares an `asr_flywheel` entry point.
"""
