#include <stdio.h>
int main(void) { puts("hello from tcc"); return 0; }
