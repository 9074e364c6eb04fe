/*
 * pure_link_check.c — linked with every object of choreo-pure and neither
 * libuv nor nanomsg (tests/meson.build): if a module of the pure core
 * calls either, this program fails to link and so does the build. Running
 * it checks nothing more.
 */
int main(void) {
  return 0;
}
